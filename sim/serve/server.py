"""Run the app under uvicorn: in the foreground (``traitlab serve``) or in a thread (tests).

Example:
    >>> with start_server(HFBackend("path/to/model")) as handle:     # doctest: +SKIP
    ...     print(handle.base_url)                                    # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from typing import Any, TextIO

from sim.backends.protocol import Backend
from sim.closing import Closing
from sim.serve.app import build_app
from sim.serve.ops import ServedModel

__all__ = ["ServerHandle", "bind_socket", "is_loopback", "loopback_warning", "serve", "start_app",
           "start_server", "uvicorn_server"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_warning(host: str) -> str | None:
    """The warning printed when ``host`` is reachable from other machines (else ``None``)."""
    if is_loopback(host):
        return None
    return (
        f"warning: traitlab serve binds to {host}, not loopback: anyone who can reach this "
        "machine can use the model (there is no authentication). Use --host 127.0.0.1 to "
        "keep it local."
    )


def bind_socket(host: str, port: int, out: TextIO) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), warning off loopback."""
    warning = loopback_warning(host)
    if warning:
        print(warning, file=out, flush=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _server(backend: Backend, window_ms: float, model_name: str | None) -> object:
    return uvicorn_server(build_app(ServedModel(backend, model_name), window_ms=window_ms))


def uvicorn_server(app: Any) -> object:
    """A quiet uvicorn server for an ASGI app (graceful shutdown bounded to 5 s)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="auto",
                            timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def serve(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    window_ms: float = 10.0,
    model_name: str | None = None,
    out: TextIO = sys.stderr,
) -> None:
    """Serve ``backend`` until interrupted (Ctrl-C); port 0 picks a free port.

    Args:
        backend: the model to serve (the hf backend for every endpoint).
        host: the address to bind; anything but loopback prints a warning.
        port: the TCP port.
        window_ms: how long a wave's first request waits for others.
        model_name: the name ``/v1/models`` lists (default: the backend's model id).
        out: where the start line and warnings go.
    """
    sock = bind_socket(host, port, out)
    bound = sock.getsockname()[1]
    print(f"traitlab serve: http://{_url_host(host)}:{bound}/v1 (wave window {window_ms} ms)",
          file=out, flush=True)
    server = _server(backend, window_ms, model_name)
    server.run(sockets=[sock])  # type: ignore[attr-defined]


class ServerHandle(Closing):
    """A server running in a background thread; stop it with :meth:`stop` or ``with``.

    Attributes:
        host: the bound address.
        port: the bound port.
    """

    def __init__(self, server: object, sock: socket.socket, host: str) -> None:
        self._server = server
        self.host = host
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True,  # type: ignore[attr-defined]
            name=f"traitlab-serve-{self.port}",
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port`` (no path)."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://host:port/v1``."""
        return f"{self.url}/v1"

    def wait_started(self, timeout_s: float = 30.0) -> None:
        """Block until the server accepts requests.

        Raises:
            TimeoutError: it did not start within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while not getattr(self._server, "started", False):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise TimeoutError(f"traitlab serve on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True  # type: ignore[attr-defined]
        self._thread.join(timeout_s)

    def close(self) -> None:
        """Stop the server (the end of a ``with`` block)."""
        self.stop()


def start_server(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    window_ms: float = 10.0,
    model_name: str | None = None,
    out: TextIO = sys.stderr,
) -> ServerHandle:
    """Start serving ``backend`` in a background thread (port 0: a free port) and wait for it.

    The backend is used only from the server's worker thread while it runs.
    """
    sock = bind_socket(host, port, out)
    handle = ServerHandle(_server(backend, window_ms, model_name), sock, host)
    handle.wait_started()
    return handle


def start_app(app: Any, host: str = "127.0.0.1", port: int = 0,
              *, out: TextIO = sys.stderr) -> ServerHandle:
    """Start any ASGI app under uvicorn in a background thread (tests' proxies use it)."""
    handle = ServerHandle(uvicorn_server(app), bind_socket(host, port, out), host)
    handle.wait_started()
    return handle


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
