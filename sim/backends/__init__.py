"""Batch-first language-model backends: the engine's only way to reach a model."""

from sim.backends.base import (
    Backend,
    GenerateRequest,
    GenerateResult,
    Message,
    ModelInfo,
    PolicyCall,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
)

__all__ = [
    "Backend",
    "GenerateRequest",
    "GenerateResult",
    "Message",
    "ModelInfo",
    "PolicyCall",
    "SamplingParams",
    "ScoreRequest",
    "ScoreResult",
]
