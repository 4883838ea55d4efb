"""The view's ASGI app: one static page and a small JSON API over a run directory.

Routes (all GET unless said)::

    /                   the page (its scripts carry a per-response CSP nonce; no network)
    /static/NAME        the page's scripts and style sheet (``sim/view/static/``)
    /api/meta           run, status, committed steps; rereads newly committed shards
    /api/population     ?replica=R            agents, positions, edges (or groups when large)
    /api/snapshot       ?replica=R&step=S     last choice and score of every agent, groups
    /api/aggregates                           per-round panels with replicate bands
    /api/transcript     ?replica=R&step=S&group=G
    /api/agent          ?replica=R&agent=A&step=S
    /api/control        GET state; POST {"action": "pause"|"step"|"resume"|"stop"} or
                        {"action": "intervene", "intervention": ID} (a declared one, applied
                        by the run thread at the next step); only with a RunControl

A live run's directory may not have its manifest yet when the server starts: the API answers
503 ``starting`` until it has.
"""

from __future__ import annotations

import secrets
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from analysis.live import LiveRun
from sim.errors import RunError
from sim.run.control import RunControl
from sim.view import data
from sim.view.layout import MAX_NODES, population

__all__ = ["ViewState", "build_app", "check_run_dir"]

_REFRESH_S = 0.3  # rereads of the run directory are at most this frequent
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class ViewState:
    """What the app serves: a run directory read on demand, an optional control, caches.

    Args:
        run_dir: the run (or sweep cell) directory.
        control: the live run's control (None: a read-only view).
        max_nodes: above this many agents the network panel draws groups.
    """

    def __init__(self, run_dir: str | Path, control: RunControl | None = None,
                 max_nodes: int = MAX_NODES) -> None:
        self.run_dir = Path(run_dir)
        self.control = control
        self.max_nodes = max_nodes
        self._live: LiveRun | None = None
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._population: dict[int, dict[str, Any]] = {}
        self._aggregates: tuple[int, dict[str, Any]] | None = None

    def live(self, *, refresh: bool = False) -> LiveRun | None:
        """The run, reread if ``refresh`` and not reread within the last moments."""
        with self._lock:
            if self._live is None:
                if not (self.run_dir / "manifest.json").is_file():
                    return None
                self._live = LiveRun(self.run_dir)
                self._read_at = time.monotonic()
            elif refresh and time.monotonic() - self._read_at > _REFRESH_S:
                self._live.refresh()
                self._read_at = time.monotonic()
            return self._live

    def population(self, live: LiveRun, replica: int) -> dict[str, Any]:
        """The network panel's layout of one replica (computed once)."""
        if replica not in self._population and live.agents.height:
            self._population[replica] = population(live.agents, live.network, replica,
                                                   self.max_nodes)
        return self._population.get(replica, {"mode": "agents", "agents": [], "edges": []})

    def aggregates(self, live: LiveRun) -> dict[str, Any]:
        """The aggregate panels, recomputed when more steps are committed."""
        if self._aggregates is None or self._aggregates[0] != live.committed:
            self._aggregates = (live.committed, data.aggregates(live))
        return self._aggregates[1]


def _int(request: Request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None and default is not None:
        return default
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"query parameter {name}={raw!r}: expected an integer") from None


def build_app(state: ViewState) -> Starlette:
    """The starlette app serving ``state``."""
    page = resources.files("sim.view").joinpath("page.html").read_text(encoding="utf-8")
    static = _static_files()

    def index(_: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; "
               "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'")
        return HTMLResponse(page.replace("__NONCE__", nonce),
                            headers={"Content-Security-Policy": csp,
                                     "Cache-Control": "no-store"})

    def asset(request: Request) -> Response:
        found = static.get(str(request.path_params["name"]))  # a fixed set: no path lookup
        if found is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "no-store"})

    def api(build: Any, *, refresh: bool = False) -> Any:
        def endpoint(request: Request) -> Response:
            live = state.live(refresh=refresh)
            if live is None:
                return JSONResponse({"status": "starting"}, status_code=503)
            try:
                return JSONResponse(build(live, request))
            except (ValueError, KeyError, IndexError) as exc:
                return JSONResponse({"error": str(exc).strip("'\"")}, status_code=400)
        return endpoint

    def meta(live: LiveRun, _: Request) -> dict[str, Any]:
        out = data.meta(live)
        out["max_nodes"] = state.max_nodes
        out["control"] = state.control.state() if state.control is not None else None
        return out

    async def control(request: Request) -> Response:
        if state.control is None:
            return JSONResponse({"error": "this view has no controls (start the run with "
                                 "--view --control)"}, status_code=403)
        if request.method == "POST":
            try:
                body = await request.json()
                item = body.get("intervention")
                return JSONResponse(state.control.apply(
                    str(body.get("action")), None if item is None else str(item)))
            except (ValueError, AttributeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(state.control.state())

    routes = [
        Route("/", index),
        Route("/static/{name}", asset),
        Route("/api/meta", api(meta, refresh=True)),
        Route("/api/population", api(lambda live, r: state.population(live, _int(r, "replica",
                                                                                  0)))),
        Route("/api/snapshot", api(lambda live, r: data.snapshot(
            live, _int(r, "replica", 0), _int(r, "step", live.committed)))),
        Route("/api/aggregates", api(lambda live, _r: state.aggregates(live))),
        Route("/api/transcript", api(lambda live, r: data.transcript(
            live, _int(r, "replica", 0), _int(r, "step"), _text(r, "group")))),
        Route("/api/agent", api(lambda live, r: data.agent_card(
            live, _int(r, "replica", 0), _text(r, "agent"), _int(r, "step", live.committed)))),
        Route("/api/control", control, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)


def _static_files() -> dict[str, tuple[str, str]]:
    """The page's scripts and style sheet by file name: (text, media type), read once."""
    folder = resources.files("sim.view").joinpath("static")
    return {item.name: (item.read_text(encoding="utf-8"), _STATIC_TYPES[suffix])
            for item in folder.iterdir()
            if (suffix := Path(item.name).suffix) in _STATIC_TYPES}


def _text(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ValueError(f"query parameter {name} is missing")
    return value


def check_run_dir(run_dir: str | Path) -> None:
    """Refuse a path that is no run directory, with the fix (before a server starts).

    Raises:
        RunError: if ``run_dir`` is missing or has no manifest.
    """
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir}: no such directory. Fix: pass a run directory like "
                       "runs/<scenario>/<time>-<id>/ (or a cell of a sweep directory).")
    LiveRun(run_dir)
