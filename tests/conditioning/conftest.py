"""Fixtures of the conditioning tests: the backend tests' tiny-model backends (own instances)."""

from __future__ import annotations

from tests.backends.conftest import fresh_backend, tiny_backend

__all__ = ["fresh_backend", "tiny_backend"]
