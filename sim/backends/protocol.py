"""The backend protocol: a batch-first language model behind the engine.

The request and result types it speaks live in :mod:`sim.requests`, which agents import too;
only the engine side ever holds a backend.

Besides ``info``, ``generate`` and ``score``, a backend declares its optional abilities in
``capabilities``; callers read the declaration instead of probing for methods, and a caller
that needs an ability the backend lacks stops with an error that names the fix:

- ``steering``: :class:`Steerable` (``set_steering``: activation-steering directions);
- ``prefix_cache``: :class:`PrefixReuse` (``forget_prefixes``: drop prompt KV kept
  between calls);
- ``stats``: :class:`Counting` (``stats``: counters such as ``retries`` and ``failures``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sim.requests import GenerateRequest, GenerateResult, ModelInfo, ScoreRequest, ScoreResult

__all__ = ["Backend", "Capabilities", "Counting", "PrefixReuse", "Steerable", "capabilities_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """The optional abilities a backend declares (all off by default).

    Attributes:
        steering: it implements :class:`Steerable`.
        prefix_cache: it implements :class:`PrefixReuse`.
        stats: it implements :class:`Counting`.
    """

    steering: bool = False
    prefix_cache: bool = False
    stats: bool = False


@runtime_checkable
class Backend(Protocol):
    """A batch-first language model. Both methods preserve order and length."""

    @property
    def info(self) -> ModelInfo:
        """Identity of the model, for the manifest."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """The optional abilities this backend has."""
        ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Generate free text for every request, in one batched pass where possible."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Return the log-likelihood of every option of every request."""
        ...


@runtime_checkable
class Steerable(Protocol):
    """A backend that adds per-trait steering directions inside the model."""

    def set_steering(self, directions: Mapping[str, Any], layers: Sequence[int]) -> None:
        """Set the per-trait ``[hidden]`` directions added at ``layers``.

        Each request's ``steering`` coefficients scale them.
        """
        ...


@runtime_checkable
class PrefixReuse(Protocol):
    """A backend that keeps prompt KV between calls to reuse shared prefixes."""

    def forget_prefixes(self) -> None:
        """Drop every prompt prefix kept from earlier calls."""
        ...


@runtime_checkable
class Counting(Protocol):
    """A backend that keeps running counters (``retries``, ``failures``, tokens, ...)."""

    @property
    def stats(self) -> Mapping[str, Any]:
        """The counters so far."""
        ...


_NONE = Capabilities()


def capabilities_of(backend: object) -> Capabilities:
    """What ``backend`` declares it can do.

    A backend that declares nothing can do nothing optional (a minimal double with only
    ``info``, ``generate`` and ``score``).

    Raises:
        TypeError: ``capabilities`` is not a :class:`Capabilities`.
    """
    declared = getattr(backend, "capabilities", _NONE)
    if not isinstance(declared, Capabilities):
        raise TypeError(f"{type(backend).__name__}.capabilities must be a Capabilities, "
                        f"not {type(declared).__name__}")
    return declared
