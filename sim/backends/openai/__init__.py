"""A backend for any OpenAI-compatible server, its response store, and replay from it."""

from sim.backends.openai.backend import OpenAIBackend, ReplayBackend
from sim.backends.openai.capabilities import Capabilities
from sim.backends.openai.config import OpenAIConfig, public_url
from sim.backends.openai.store import ResponseStore, request_key
from sim.backends.openai.transport import ReplayMissError

__all__ = ["Capabilities", "OpenAIBackend", "OpenAIConfig", "ReplayBackend", "ReplayMissError",
           "ResponseStore", "public_url", "request_key"]
