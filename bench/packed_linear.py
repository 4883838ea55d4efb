"""Packed against plain linear layers on a CPU: prefill and decode time, same tokens.

Usage::

    .venv/bin/python bench/packed_linear.py [--rounds 3] [--rows 32]

Loads SmolLM2 in bf16 through :class:`HFBackend` (which packs its linear layers) and times the
same wave of ~190-token prompts with the packed layers and, inside
:func:`sim.backends.hf.packed_linear.unpacked`, with the plain ones, alternately, ``--rounds``
times each; the better time of each counts (this machine's speed drifts from minute to
minute). Each wave is timed twice: with one new token (prefill) and with up to 32 (prefill
and decoding; decoding is the difference). It does so for ``--rows`` rows and for one row.
Packing gives the same bits, so both versions generate the same tokens (checked, printed as
``same_tokens``). Ratios are plain time / packed time (above 1: packing is faster).

The last line printed is the JSON of all figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from sim.backends.hf.backend import HFBackend  # noqa: E402
from sim.backends.hf.packed_linear import PackedLinear, unpacked  # noqa: E402
from sim.requests import GenerateRequest, Message, SamplingParams  # noqa: E402

NEW_TOKENS = 32
FILLER = ("The market opened late, the baker sold out of rye, and the mayor spoke about the "
          "bridge. ")


def wave(rows: int, new: int) -> list[GenerateRequest]:
    """``rows`` distinct ~190-token prompts asking for a long answer, seeded sampling."""
    return [GenerateRequest(
        messages=(Message("user", f"Villager {k} writes: " + FILLER * (5 + k % 3)
                          + "Tell the whole story of this day in detail."),),
        sampling=SamplingParams(max_new_tokens=new, temperature=0.7, seed=k))
        for k in range(rows)]


def timed(backend: HFBackend, requests: Sequence[GenerateRequest]) -> tuple[float, list[str]]:
    """Seconds to generate ``requests`` from a cold prompt store, and the texts."""
    backend.forget_prefixes()
    started = time.perf_counter()
    results = backend.generate(requests)
    return time.perf_counter() - started, [r.text for r in results]


def main(argv: Sequence[str] | None = None) -> int:
    """Time packed and plain layers alternately and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=32)
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    backend = HFBackend(None, dtype="bfloat16", device="cpu")
    model = backend.model
    if not any(isinstance(m, PackedLinear) for m in model.modules()):
        console.print("this CPU runs bf16 without oneDNN's native kernels: nothing is packed")
        return 1
    best: dict[tuple[str, int, str], float] = {}
    texts: dict[tuple[str, int], list[str]] = {}
    versions: dict[str, Any] = {"packed": nullcontext, "plain": lambda: unpacked(model)}
    for rows in (args.rows, 1):
        prefill, full = wave(rows, 1), wave(rows, NEW_TOKENS)
        timed(backend, prefill)  # warm-up of these shapes
        for round_ in range(args.rounds):
            for name, version in versions.items():
                context: AbstractContextManager[Any] = version()
                with context:
                    first, _ = timed(backend, prefill)
                    whole, texts[(name, rows)] = timed(backend, full)
                for part, seconds in (("prefill", first), ("decode", whole - first)):
                    key = (name, rows, part)
                    best[key] = min(best.get(key, seconds), seconds)
            console.print(f"  {rows} rows, round {round_ + 1}/{args.rounds} done")

    figures: dict[str, Any] = {"rounds": args.rounds}
    table = Table(title="packed vs plain linear layers (best of each)")
    for column in ("rows", "part", "plain s", "packed s", "plain / packed"):
        table.add_column(column)
    for rows in (args.rows, 1):
        for part in ("prefill", "decode"):
            plain, packed = best[("plain", rows, part)], best[("packed", rows, part)]
            figures[f"{part}_{rows}_rows_plain_s"] = round(plain, 3)
            figures[f"{part}_{rows}_rows_packed_s"] = round(packed, 3)
            figures[f"{part}_{rows}_rows_speedup"] = round(plain / packed, 3)
            table.add_row(str(rows), part, f"{plain:.3f}", f"{packed:.3f}",
                          f"{plain / packed:.3f}")
        figures[f"same_tokens_{rows}_rows"] = texts[("plain", rows)] == texts[("packed", rows)]
    Console().print(table)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
