"""Batch-first language-model backends: the engine's only way to reach a model.

``protocol`` defines :class:`~sim.backends.protocol.Backend`; ``scripted`` answers rule-based
agents without a model; ``hf/`` runs a transformers model in process. The request and result
types they speak live in :mod:`sim.requests`.
"""
