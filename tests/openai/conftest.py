"""A tiny model served by `traitlab serve` on 127.0.0.1, and the same model in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.openai.fault_proxy import FaultProxy


@pytest.fixture(scope="session")
def served_backend(tiny_model_path: Path):
    from sim.backends.hf.backend import HFBackend

    return HFBackend(tiny_model_path, dtype="float32", threads=1)


@pytest.fixture(scope="session")
def reference_backend(tiny_model_path: Path):
    from sim.backends.hf.backend import HFBackend

    return HFBackend(tiny_model_path, dtype="float32", threads=1)


@pytest.fixture(scope="session")
def server(served_backend) -> Iterator:
    from sim.serve import start_server

    handle = start_server(served_backend, window_ms=20)
    yield handle
    handle.stop()


@pytest.fixture
def proxy(server) -> Iterator[tuple[FaultProxy, object]]:
    from sim.serve import start_app

    fault = FaultProxy(server.url)
    handle = start_app(fault.app)
    yield fault, handle
    handle.stop()


def config(base_url: str, **kw):
    from sim.backends.openai import OpenAIConfig

    kw.setdefault("timeout_s", 30)
    kw.setdefault("backoff_s", 0.01)
    return OpenAIConfig(base_url=base_url, **kw)
