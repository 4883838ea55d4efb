"""Per-row activation steering: a forward hook adds a ``[batch, hidden]`` tensor to the residual.

A request's steering coefficients ``(("extraversion", 2.0), ...)`` become the row vector
``sum(coef * direction[trait])``; the hook adds it at every position of the outputs of the
chosen decoder layers. Rows without steering get a zero vector (an exact no-op), and a batch
without any steering registers no hook at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from sim.errors import BackendError

__all__ = ["RowSteering", "Steering", "SteeringSet", "steering_applied"]

Steering = tuple[tuple[str, float], ...]


class SteeringSet:
    """Named steering directions and the decoder layers they are added at.

    Args:
        directions: one ``[hidden]`` tensor per trait name.
        layers: indices of the decoder layers whose outputs are steered.
        hidden_size: the model's hidden size.
        num_layers: the model's number of decoder layers.

    Raises:
        BackendError: a direction has the wrong shape or a layer index is out of range.
    """

    def __init__(
        self,
        directions: Mapping[str, torch.Tensor],
        layers: Sequence[int],
        *,
        hidden_size: int,
        num_layers: int,
    ) -> None:
        for name, vec in directions.items():
            if tuple(vec.shape) != (hidden_size,):
                raise BackendError(
                    f"steering direction '{name}': shape {tuple(vec.shape)}, expected "
                    f"({hidden_size},). Fix: pass one [hidden] vector per trait."
                )
        bad = [i for i in layers if not 0 <= int(i) < num_layers]
        if bad or not layers:
            raise BackendError(
                f"steering layers {list(layers)}: allowed are 0..{num_layers - 1}, at least "
                "one. Fix: choose layers inside the model."
            )
        self.directions = {k: v.detach().float().cpu() for k, v in directions.items()}
        self.layers = tuple(int(i) for i in layers)
        self.hidden_size = hidden_size

    def check(self, steering: Steering) -> None:
        """Raise :class:`BackendError` if ``steering`` names an unknown trait."""
        unknown = [name for name, _ in steering if name not in self.directions]
        if unknown:
            raise BackendError(
                f"steering trait(s) {unknown}: no direction set; known: "
                f"{sorted(self.directions)}. Fix: HFBackend.set_steering(...) with them."
            )

    def row_vectors(self, steerings: Sequence[Steering]) -> torch.Tensor:
        """Return the ``[rows, hidden]`` float32 tensor of ``sum(coef * direction)`` per row."""
        out = torch.zeros(len(steerings), self.hidden_size)
        for row, steering in enumerate(steerings):
            for name, coef in steering:
                out[row] += float(coef) * self.directions[name]
        return out


class RowSteering:
    """The vectors of the rows currently in a running batch; follows row drops."""

    def __init__(self, vectors: torch.Tensor) -> None:
        self.vectors = vectors

    def select(self, keep: torch.Tensor) -> None:
        """Keep the rows at positions ``keep``."""
        self.vectors = self.vectors.index_select(0, keep.to(self.vectors.device))

    def hook(self, module: Any, args: Any, output: Any) -> Any:
        """Forward hook: add row ``i``'s vector at every position of row ``i``."""
        hidden = output[0] if isinstance(output, tuple) else output
        steered = hidden + self.vectors.to(hidden.dtype)[:, None, :]
        if isinstance(output, tuple):
            return (steered, *output[1:])
        return steered


@contextmanager
def steering_applied(
    model: Any,
    steering_set: SteeringSet | None,
    steerings: Sequence[Steering],
    *,
    device: torch.device | str,
    dtype: torch.dtype,
) -> Iterator[RowSteering | None]:
    """Register the steering hook for a batch while the block runs, then remove it.

    Yields ``None`` (and registers nothing) when no row has steering.
    """
    if steering_set is None or not any(steerings):
        yield None
        return
    state = RowSteering(steering_set.row_vectors(steerings).to(device=device, dtype=dtype))
    layers = model.model.layers
    handles = [layers[i].register_forward_hook(state.hook) for i in steering_set.layers]
    try:
        yield state
    finally:
        for handle in handles:
            handle.remove()
