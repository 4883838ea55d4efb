"""The backend protocol: a batch-first language model behind the engine.

The request and result types it speaks live in :mod:`sim.requests`, which agents import too;
only the engine side ever holds a backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sim.requests import GenerateRequest, GenerateResult, ModelInfo, ScoreRequest, ScoreResult

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """A batch-first language model. Both methods preserve order and length."""

    @property
    def info(self) -> ModelInfo:
        """Identity of the model, for the manifest."""
        ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Generate free text for every request, in one batched pass where possible."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Return the log-likelihood of every option of every request."""
        ...
