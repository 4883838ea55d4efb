"""The backend a run config asks for, opened in one place for runs, sweeps and Ray actors."""

from __future__ import annotations

from sim.backends.protocol import Backend
from sim.scenario.spec import RunConfig

__all__ = ["open_backend"]


def open_backend(config: RunConfig) -> Backend:
    """The backend a run config asks for (the embedded model by default)."""
    if config.backend == "scripted":
        from sim.backends.scripted import ScriptedBackend

        return ScriptedBackend()
    from sim.backends.hf.backend import HFBackend, HFConfig

    return HFBackend(HFConfig.from_run(config))
