"""``traitlab view RUN_DIR`` and ``traitlab run ... --view [--control]``: the browser view.

The view always listens on 127.0.0.1. Beside a running simulation it runs in a thread and
reads the run directory as the run commits steps; ``--control`` adds pause, step, stop and the
scenario's interventions (a :class:`~sim.run.control.RunControl` the run checks between
steps).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import RunError

__all__ = ["LiveView", "add_parser", "add_run_flags", "live_view", "main"]

_EXAMPLE = """example:
  traitlab view runs/prisoners-dilemma/20261123T101500Z-1a2b3c
  traitlab view runs/pd-sweep/cell-0003 --port 8765
  traitlab run scenarios/naming_game.yaml --backend scripted --view --control
"""
_GRACE_S = 2.0  # a stopped run's page gets this long to read the final status


def add_parser(sub: Any) -> None:
    """Register ``traitlab view`` (its ``handler`` is :func:`main`)."""
    view = sub.add_parser("view", help="open a run in the browser (step slider, network, "
                          "transcripts, agent cards)", epilog=_EXAMPLE,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    view.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                      help="a run directory, or one cell of a sweep")
    view.add_argument("--port", type=int, default=0,
                      help="TCP port on 127.0.0.1 (default: a free one)")
    _max_nodes(view)
    view.set_defaults(handler=main)


def add_run_flags(run: argparse.ArgumentParser, sub: Any) -> None:
    """Add ``--view``, ``--control`` and ``--view-port`` to ``traitlab run``.

    Also registers ``traitlab view`` in ``sub``, so the CLI's parser gains both in one call.
    """
    run.add_argument("--view", action="store_true",
                     help="watch the run in the browser (prints the address); the page "
                     "stays up after the run until Ctrl-C")
    run.add_argument("--control", action="store_true",
                     help="with --view: pause, step once, resume and stop the run from the "
                     "page, and apply the scenario's declared interventions at the next step; "
                     "the run starts paused before step 1 (press resume or step)")
    run.add_argument("--view-port", type=int, default=0, metavar="N",
                     help="with --view: TCP port on 127.0.0.1 (default: a free one)")
    _max_nodes(run)
    add_parser(sub)


def _max_nodes(parser: argparse.ArgumentParser) -> None:
    from sim.view.layout import MAX_NODES

    parser.add_argument("--max-nodes", type=int, default=MAX_NODES, metavar="N",
                        help=f"draw groups instead of agents above N agents (default "
                        f"{MAX_NODES})")


def _check_port(flag: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise RunError(f"{flag} {port}: not a TCP port. Fix: use 1..65535, or leave it out "
                       "for a free port.")


def main(args: argparse.Namespace) -> int:
    """``traitlab view``: serve until Ctrl-C."""
    from sim.view.app import check_run_dir
    from sim.view.server import serve_view

    _check_port("--port", args.port)
    check_run_dir(args.run_dir)
    try:
        serve_view(args.run_dir, args.port, max_nodes=max(1, args.max_nodes))
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the signal
        print("view stopped.", file=sys.stderr)
    except OSError as exc:
        raise RunError(f"--port {args.port}: cannot listen on 127.0.0.1: "
                       f"{exc.strerror or exc}. Fix: pick another port or leave --port out."
                       ) from None
    return 0


@dataclass
class LiveView:
    """What ``traitlab run`` passes on when a view watches it: ``run_scenario`` keywords."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    handle: Any = None
    control: Any = None

    def linger(self) -> int:
        """Keep the page up after a finished run until Ctrl-C; the exit code (0)."""
        if self.handle is None:
            return 0
        print(f"run finished; the view stays at {self.handle.url}/ until Ctrl-C",
              file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        return 0


@contextmanager
def live_view(args: argparse.Namespace, spec: Any, config: Any,
              run_dir: Path | None = None) -> Iterator[LiveView]:
    """A view beside the run when ``--view`` is given (else nothing); stopped on exit.

    Args:
        args: the parsed ``traitlab run`` flags.
        spec: the scenario (for a fresh run directory).
        config: the run config (for a fresh run directory).
        run_dir: the directory of a resumed run (default: a fresh one is made now, so the
            address can be printed before the model loads).
    """
    view = getattr(args, "view", False)
    if getattr(args, "control", False) and not view:
        raise RunError("--control needs --view (the controls are on the page).")
    if not view:
        yield LiveView()
        return
    _check_port("--view-port", args.view_port)
    from sim.records.recorder import Recorder
    from sim.run.control import RunControl
    from sim.view.server import start_view

    fresh = run_dir is None
    path = run_dir if run_dir is not None else Recorder.new_dir(config, spec)
    control = RunControl(paused=True) if args.control else None
    handle = start_view(path, args.view_port, control=control,
                        max_nodes=max(1, args.max_nodes))
    print(f"traitlab view: {handle.url}/" + ("  (controls on)" if control else ""),
          file=sys.stderr, flush=True)
    kwargs: dict[str, Any] = {"run_dir": path} if fresh else {}
    if control is not None:
        kwargs["hooks"] = control
    try:
        yield LiveView(kwargs, handle, control)
    except KeyboardInterrupt:
        time.sleep(_GRACE_S if control is not None and control.state()["stopping"] else 0)
        raise
    finally:
        handle.stop()
