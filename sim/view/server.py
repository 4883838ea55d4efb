"""Run the view on 127.0.0.1: in the foreground (``traitlab view``) or in a thread (``--view``).

Example:
    >>> handle = start_view("runs/prisoners-dilemma/20261123T101500Z-1a2b3c")  # doctest: +SKIP
    >>> print(handle.url); handle.stop()                                        # doctest: +SKIP
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from sim.run.control import RunControl
from sim.serve.server import ServerHandle, bind_socket, start_app, uvicorn_server
from sim.view.app import ViewState, build_app
from sim.view.layout import MAX_NODES

__all__ = ["HOST", "serve_view", "start_view"]

HOST = "127.0.0.1"
"""The view listens on loopback only: it has no authentication, and live controls stop runs."""


def serve_view(run_dir: str | Path, port: int = 0, *, max_nodes: int = MAX_NODES,
               out: TextIO = sys.stdout) -> None:
    """Serve the view of ``run_dir`` until Ctrl-C (port 0: a free port); prints the address."""
    sock = bind_socket(HOST, port, out)
    print(f"traitlab view: http://{HOST}:{sock.getsockname()[1]}/  (Ctrl-C to stop)",
          file=out, flush=True)
    server = uvicorn_server(build_app(ViewState(run_dir, max_nodes=max_nodes)))
    server.run(sockets=[sock])  # type: ignore[attr-defined]


def start_view(run_dir: str | Path, port: int = 0, *, control: RunControl | None = None,
               max_nodes: int = MAX_NODES, out: TextIO = sys.stderr) -> ServerHandle:
    """Start the view of ``run_dir`` (which may not be written yet) in a background thread."""
    return start_app(build_app(ViewState(run_dir, control, max_nodes)), HOST, port, out=out)
