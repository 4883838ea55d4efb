"""A seeded minimal naming game (Baronchelli et al. 2006) whose convergence is known exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from analysis.synthetic import EVENTS_SCHEMA, agents_frame

__all__ = [
    "NamingGameRun",
    "naming_game",
]


@dataclass(frozen=True)
class NamingGameRun:
    """One simulated minimal naming game: records plus the simulator's own ground truth."""

    events: pl.DataFrame
    agents: pl.DataFrame
    converged_round: int | None
    """First round after which every inventory is the same single name (None: censored)."""
    interactions: int | None
    """Pair interactions up to and including ``converged_round``."""


def naming_game(
    n_agents: int, rng: np.random.Generator, *, max_rounds: int = 2000, tail_rounds: int = 5,
    committed_fraction: float = 0.0, committed_name: str = "B",
    initial_convention: str | None = None, run_id: str = "run-0", replica: int = 0,
    stage: str = "name",
) -> NamingGameRun:
    """Baronchelli's minimal naming game on a fully mixed population.

    Each round the agents are split into ``n_agents // 2`` random speaker-hearer pairs. The
    speaker utters a random name of its inventory (inventing a new one when empty). If the
    hearer knows it, both collapse their inventories to it (success); else the hearer adds
    it. Records: the speaker's ``choice`` is the uttered name; the hearer's ``choice`` is the
    same name on success, else a random name of its inventory before the interaction (null
    if empty), so "both choices match" is exactly "success". Committed agents keep the
    inventory ``{committed_name}`` forever; the others start from ``{initial_convention}``
    when given, else empty.

    Args:
        n_agents: Population size (even).
        rng: Seeded generator.
        max_rounds: Horizon in rounds.
        tail_rounds: Rounds simulated after convergence (so "stays converged" is observable).
        committed_fraction: Share of committed agents (rounded down).
        committed_name: Name the committed agents always use.
        initial_convention: Convention the uncommitted agents start with.
        run_id: Run id of the records.
        replica: Replica index.
        stage: Stage name.

    Returns:
        A :class:`NamingGameRun`.
    """
    n_comm = int(np.floor(committed_fraction * n_agents + 1e-9))
    ids = [f"n{i:03d}" for i in range(n_agents)]
    committed = np.zeros(n_agents, bool)
    committed[:n_comm] = True
    inv: list[list[str]] = [[committed_name] if c else
                            ([initial_convention] if initial_convention else [])
                            for c in committed]
    cols: dict[str, list[Any]] = {c: [] for c in
                                  ("round", "group", "agent", "partners", "role", "choice")}
    n_new, conv_round, stop_at = 0, None, max_rounds
    half = n_agents // 2
    for t in range(max_rounds):
        if t >= stop_at:
            break
        perm = rng.permutation(n_agents)
        for g in range(half):
            s, h = int(perm[2 * g]), int(perm[2 * g + 1])
            word, hearer_choice, n_new = _interact(inv, committed, s, h, rng, n_new)
            for ag, other, role, ch in ((s, h, "speaker", word), (h, s, "hearer", hearer_choice)):
                cols["round"].append(t)
                cols["group"].append(f"r{t}g{g}")
                cols["agent"].append(ids[ag])
                cols["partners"].append([ids[other]])
                cols["role"].append(role)
                cols["choice"].append(ch)
        if conv_round is None and all(len(x) == 1 and x[0] == inv[0][0] for x in inv):
            conv_round, stop_at = t, min(max_rounds, t + 1 + tail_rounds)
    events = _naming_events(cols, run_id, replica, stage)
    pol = ["committed" if c else "minimal_naming" for c in committed]
    inter = None if conv_round is None else (conv_round + 1) * half
    return NamingGameRun(events, agents_frame(run_id, replica, ids, pol), conv_round, inter)


def _interact(inv: list[list[str]], committed: np.ndarray, s: int, h: int,
              rng: np.random.Generator, n_new: int) -> tuple[str, str | None, int]:
    """One speaker-hearer interaction; updates ``inv`` in place.

    Returns the uttered word, the hearer's recorded choice and the count of invented names.
    """
    if not inv[s]:
        inv[s].append(f"w{n_new}")
        n_new += 1
    word = inv[s][int(rng.integers(len(inv[s])))]
    ok = word in inv[h]
    hearer_choice = word if ok else (inv[h][int(rng.integers(len(inv[h])))] if inv[h] else None)
    if ok:
        if not committed[s]:
            inv[s] = [word]
        if not committed[h]:
            inv[h] = [word]
    elif not committed[h]:
        inv[h].append(word)
    return word, hearer_choice, n_new


def _naming_events(cols: dict[str, list[Any]], run_id: str, replica: int,
                   stage: str) -> pl.DataFrame:
    """Event records of a simulated naming game from its per-row columns."""
    n = len(cols["round"])
    return pl.DataFrame({
        "run_id": [run_id] * n, "replica": [replica] * n, "step": cols["round"],
        "round": cols["round"], "stage": [stage] * n, "kind": ["choice"] * n,
        "group": cols["group"], "turn": [0] * n, "agent": cols["agent"],
        "partners": cols["partners"], "role": cols["role"], "text": [None] * n,
        "choice": cols["choice"], "choice_index": [None] * n, "options": [[]] * n,
        "option_probs": [[]] * n, "payoff": [None] * n, "score": [0.0] * n,
        "status": ["ok"] * n,
    }, schema=EVENTS_SCHEMA)
