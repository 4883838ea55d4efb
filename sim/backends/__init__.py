"""Batch-first language-model backends: the engine's only way to reach a model."""

from sim.backends.protocol import Backend
from sim.requests import (
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
