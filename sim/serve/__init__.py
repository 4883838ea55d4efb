"""``traitlab serve``: an OpenAI-compatible server over a TraitLab backend, batching requests."""

from sim.serve.app import build_app
from sim.serve.ops import ServedModel
from sim.serve.server import ServerHandle, serve, start_server

__all__ = ["ServedModel", "ServerHandle", "build_app", "serve", "start_server"]
