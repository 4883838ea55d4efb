"""Convergence-time exponent of the minimal naming game, with enough seeds to state it.

Runs the seeded simulator of ``analysis.synthetic_naming`` (Baronchelli et al. 2006, fully
mixed population) for several population sizes N, measures the interactions to global
consensus from the records with ``analysis.naming.naming_convergence`` and fits
``T_c ~ N^alpha`` by OLS on logs (``analysis.naming.power_law_fit``). Prints the fit over
each window of sizes and the local exponent between successive sizes, which shows whether the
finite-size regime has been left (theory: alpha -> 1.5 as N grows).

    .venv/bin/python bench/naming_exponent.py            # 50 seeds, N = 16..256
    .venv/bin/python bench/naming_exponent.py --quick    # 12 seeds, N = 16..128
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import polars as pl

from analysis.naming import naming_convergence, power_law_fit
from analysis.synthetic_naming import naming_game


def _interactions(sizes: list[int], seeds: int) -> pl.DataFrame:
    rows = []
    for n in sizes:
        for s in range(seeds):
            run = naming_game(n, np.random.default_rng(10_000 * n + s), run_id=f"N{n}-{s}")
            conv = naming_convergence(run.events)
            if not conv["converged"][0]:
                raise SystemExit(f"N={n} seed {s} did not converge; raise max_rounds")
            rows.append(conv)
    return pl.concat(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 seeds, N = 16..128")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()
    sizes = [16, 32, 64, 128] if args.quick else [16, 32, 64, 128, 256]
    seeds = args.seeds or (12 if args.quick else 50)
    started = time.perf_counter()
    df = _interactions(sizes, seeds)
    print(f"naming-game exponent: {seeds} seeds per N, N = {sizes} "
          f"({platform.processor() or platform.machine()}, {time.perf_counter() - started:.0f} s)")
    windows = [sizes[i:i + 4] for i in range(len(sizes) - 3)]
    for window in windows:
        part = df.filter(pl.col("n_agents").is_in(window))
        fit = power_law_fit(part, "n_agents", "interactions")
        print(f"  fit over N = {window[0]}..{window[-1]}: alpha = {fit['exponent']:.3f} "
              f"(95% CI {fit['ci_low']:.3f}-{fit['ci_high']:.3f})")
    means = df.group_by("n_agents").agg(pl.col("interactions").mean()).sort("n_agents")
    n, t = means["n_agents"].to_numpy(), means["interactions"].to_numpy()
    local = np.diff(np.log(t)) / np.diff(np.log(n))
    print("  local exponent between successive N: " + ", ".join(
        f"{a}->{b}: {x:.3f}" for a, b, x in zip(n[:-1], n[1:], local, strict=True)))


if __name__ == "__main__":
    main()
