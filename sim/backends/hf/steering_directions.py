"""Steering directions computed on the loaded model, and cached on disk.

The recipe (contrastive pairs, layers, recipe hash, coefficients) is pure and lives in
:mod:`agents.steering`; this module runs it on an :class:`HFBackend`'s model: each statement
is fed as the assistant's reply to each question, the residual stream of the chosen layer(s)
is averaged over the statement's tokens, and a trait's direction is ``mean(high) - mean(low)``.

Directions are cached as ``<weights hash>-<recipe hash>.pt`` under ``<model cache>/steering``,
so a changed model, pair list or layer never reuses a stale direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.persona import TRAITS
from agents.steering import SteeringDirections, default_layers, load_pairs, recipe_hash
from sim.backends.hf.model_store import default_cache_dir
from sim.requests import Message

if TYPE_CHECKING:
    from sim.backends.hf.backend import HFBackend

__all__ = ["compute_directions", "load_or_compute_directions"]


def compute_directions(backend: HFBackend, layers: Sequence[int],
                       pairs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compute one direction per trait on ``backend``'s model (an :class:`HFBackend`).

    Returns:
        ``{trait: [hidden] float32 tensor}``.
    """
    import torch

    pairs = pairs if pairs is not None else load_pairs()
    model = backend.model
    device = next(model.parameters()).device
    system = pairs.get("system", "")

    def prompt_ids(question: str) -> list[int]:
        msgs = ((Message("system", system),) if system else ()) + (Message("user", question),)
        return list(backend.render(msgs))

    def pooled(texts: list[tuple[str, str]]) -> Any:
        """Mean hidden state over each statement's tokens, in one right-padded batch."""
        seqs = [(prompt_ids(q), list(backend.option_ids(s))) for q, s in texts]
        width = max(len(p) + len(r) for p, r in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        span = torch.zeros((len(seqs), width, 1))
        for row, (p, r) in enumerate(seqs):
            ids[row, : len(p) + len(r)] = torch.tensor(p + r)
            mask[row, : len(p) + len(r)] = 1
            span[row, len(p) : len(p) + len(r)] = 1.0 / len(r)
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                    output_hidden_states=True, use_cache=False)
        per_layer = [(out.hidden_states[i + 1].float().cpu() * span).sum(1) for i in layers]
        return torch.stack(per_layer).mean(0)

    directions: dict[str, Any] = {}
    with torch.inference_mode():
        for trait in TRAITS:
            cases = [(q, hi, lo) for hi, lo in pairs["pairs"][trait] for q in pairs["questions"]]
            high = pooled([(q, hi) for q, hi, _ in cases])
            low = pooled([(q, lo) for q, _, lo in cases])
            directions[trait] = (high - low).mean(0)
    return directions


def load_or_compute_directions(
    backend: HFBackend, *, layers: Sequence[int] | None = None, cache_dir: Path | None = None,
    pairs_path: Path | None = None,
) -> SteeringDirections:
    """Load cached directions for this model and recipe, or compute and cache them.

    Args:
        backend: an :class:`HFBackend` (needs ``model``, ``render``, ``option_ids``, ``info``).
        layers: decoder layers (default: :func:`default_layers`).
        cache_dir: where ``<weights>-<recipe>.pt`` files live (default:
            ``<model cache>/steering``).
        pairs_path: a custom pairs file.
    """
    import torch

    pairs = load_pairs(pairs_path)
    n_layers = len(backend.model.model.layers)
    layers = tuple(int(i) for i in (layers if layers is not None else default_layers(n_layers)))
    rhash = recipe_hash(pairs, layers)
    try:
        whash = backend.info.weights_hash
    except Exception:  # models without weight files are not cached
        whash = None
    path = None
    if whash:
        root = cache_dir if cache_dir is not None else default_cache_dir() / "steering"
        path = Path(root) / f"{whash[:16]}-{rhash[:16]}.pt"
        if path.exists():
            saved = torch.load(path, weights_only=True)
            dirs = {k: v.float() for k, v in saved.items()}
            return SteeringDirections(dirs, layers, whash, rhash, _norms(dirs), True, path)
    dirs = compute_directions(backend, layers, pairs)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(dirs, tmp)
        tmp.replace(path)
    return SteeringDirections(dirs, layers, whash, rhash, _norms(dirs), False, path)


def _norms(dirs: Mapping[str, Any]) -> dict[str, float]:
    return {k: round(float(v.norm()), 4) for k, v in dirs.items()}
