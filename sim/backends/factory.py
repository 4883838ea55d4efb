"""The backend a run config asks for, opened in one place for runs, sweeps and Ray actors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.backends.protocol import Backend
from sim.scenario.spec import RunConfig

if TYPE_CHECKING:
    from sim.backends.openai import OpenAIBackend

__all__ = ["RESPONSES_DIR", "open_backend", "open_server_backend", "server_summary"]

RESPONSES_DIR = "responses"
"""A run directory's response store (openai backend): every server reply, keyed by request."""


def open_backend(config: RunConfig, run_dir: Path | None = None) -> Backend:
    """The backend a run config asks for (the embedded model by default).

    Args:
        config: the run config.
        run_dir: the run directory; a server backend keeps its responses in
            ``run_dir / responses``, so a resumed run never asks the same request twice.
    """
    if config.backend == "scripted":
        from sim.backends.scripted import ScriptedBackend

        return ScriptedBackend()
    if config.backend == "openai":
        return open_server_backend(config, run_dir)
    from sim.backends.hf.backend import HFBackend, HFConfig

    return HFBackend(HFConfig.from_run(config))


def open_server_backend(config: RunConfig, run_dir: Path | None = None) -> OpenAIBackend:
    """An :class:`~sim.backends.openai.OpenAIBackend` for ``config.api``, probed once.

    Prints one line to stderr saying what the server supports.

    Raises:
        BackendError: no ``api`` settings, the key variable is unset, or the server cannot be
            reached.
    """
    from sim.backends.openai import OpenAIBackend, OpenAIConfig
    from sim.errors import BackendError

    if config.api is None:
        raise BackendError("backend 'openai' needs api settings. Fix: pass --base-url URL.")
    settings = OpenAIConfig(**config.api.model_dump())
    store = Path(run_dir) / RESPONSES_DIR if run_dir is not None else None
    backend = OpenAIBackend(settings, store_dir=store)
    try:
        backend.detect()
    except BaseException:
        backend.close()
        raise
    print(server_summary(backend.describe()), file=sys.stderr, flush=True)
    return backend


def server_summary(detail: dict[str, Any]) -> str:
    """One line: where the server is, which model, and how choices will be scored."""
    caps = detail.get("capabilities") or {}
    how = {"native": "log-probs (traitlab serve)", "logprobs": "log-probs (tokenize + echo)",
           "constrained": f"constrained choice ({caps.get('guided')})",
           "parsed": "parsed replies (the server offers no log-probs or guided choice)"}
    scoring = how.get(str(caps.get("scoring")), str(caps.get("scoring")))
    steer = "; steering available" if caps.get("traitlab") else ""
    return (f"openai backend: {detail.get('base_url')} model {detail.get('model')!r}; "
            f"choices scored by {scoring}{steer}")
