"""Fixtures of the backend tests: a tiny random ChatML Llama model, loaded through HFBackend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_path: Path):
    """A shared fp32 backend; tests that change steering build their own."""
    from sim.backends.hf.backend import HFBackend

    return HFBackend(tiny_model_path, dtype="float32", threads=1)


@pytest.fixture
def fresh_backend(tiny_model_path: Path):
    from sim.backends.hf.backend import HFBackend

    return HFBackend(tiny_model_path, dtype="float32", threads=1)
