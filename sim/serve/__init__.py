"""``traitlab serve``: an OpenAI-compatible server over a TraitLab backend, batching requests."""

from sim.serve.app import build_app
from sim.serve.ops import ServedModel
from sim.serve.server import ServerHandle, loopback_warning, serve, start_app, start_server

__all__ = ["ServedModel", "ServerHandle", "build_app", "loopback_warning", "serve", "start_app",
           "start_server"]
