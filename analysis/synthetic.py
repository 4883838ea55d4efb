"""Seeded generators of synthetic records with known answers, to validate the analyzers.

Every generator takes a ``numpy.random.Generator`` and returns frames with exactly the record
schemas the engine writes (events, agents, surveys), so analyzers see nothing special.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from analysis.drift import TRAITS

__all__ = [
    "AGENTS_SCHEMA",
    "EVENTS_SCHEMA",
    "STRATEGIES",
    "SURVEYS_SCHEMA",
    "agents_frame",
    "events_frame",
    "planted_surveys",
    "repeated_game",
    "synthetic_dialogues",
    "synthetic_surveys",
]

EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(), "replica": pl.Int32(), "step": pl.Int32(), "round": pl.Int32(),
    "stage": pl.String(), "kind": pl.String(), "group": pl.String(), "turn": pl.Int32(),
    "agent": pl.String(), "partners": pl.List(pl.String()), "role": pl.String(),
    "text": pl.String(), "choice": pl.String(), "choice_index": pl.Int32(),
    "options": pl.List(pl.String()), "option_probs": pl.List(pl.Float64()),
    "payoff": pl.Float64(), "score": pl.Float64(), "status": pl.String(),
}
AGENTS_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(), "replica": pl.Int32(), "agent": pl.String(), "name": pl.String(),
    **{t: pl.Float64() for t in TRAITS}, "policy": pl.String(),
}
SURVEYS_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(), "replica": pl.Int32(), "step": pl.Int32(), "round": pl.Int32(),
    "agent": pl.String(), "instrument": pl.String(), "item_id": pl.String(),
    "trait": pl.String(), "keyed": pl.Int8(), "mode": pl.String(), "order": pl.String(),
    "paraphrase": pl.Int32(), "repeat": pl.Int32(), "expected": pl.Float64(),
    "argmax": pl.Int32(), "entropy": pl.Float64(), "refused": pl.Boolean(),
}
_DEFAULTS: dict[str, Any] = {
    "replica": 0, "step": 0, "turn": 0, "partners": [], "role": None, "text": None,
    "choice": None, "choice_index": None, "options": [], "option_probs": [], "payoff": None,
    "score": 0.0, "status": "ok",
}


def events_frame(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Build an events frame with the exact engine schema, filling omitted fields.

    Args:
        rows: Dicts with at least ``run_id, round, stage, kind, group, agent``.

    Returns:
        A DataFrame with the columns and dtypes of ``EVENTS_SCHEMA``.
    """
    cols: dict[str, list[Any]] = {c: [] for c in EVENTS_SCHEMA}
    for r in rows:
        for c in EVENTS_SCHEMA:
            cols[c].append(r[c] if c in r else _DEFAULTS[c])
    return pl.DataFrame(cols, schema=EVENTS_SCHEMA)


def agents_frame(run_id: str, replica: int, ids: Sequence[str], policies: Sequence[str | None],
                 profiles: np.ndarray | None = None) -> pl.DataFrame:
    """An agents frame for synthetic runs (traits 0.5 unless ``profiles`` gives them)."""
    prof = np.full((len(ids), 5), 0.5) if profiles is None else profiles
    data: dict[str, list[Any]] = {
        "run_id": [run_id] * len(ids), "replica": [replica] * len(ids), "agent": list(ids),
        "name": list(ids), **{t: prof[:, i].tolist() for i, t in enumerate(TRAITS)},
        "policy": list(policies),
    }
    return pl.DataFrame(data, schema=AGENTS_SCHEMA)


# --------------------------------------------------------------------------- surveys


def synthetic_surveys(
    rng: np.random.Generator, *, n_runs: int = 1, n_agents: int = 20,
    rounds: Sequence[int] = (0, 2, 4, 6, 8), items_per_trait: int = 4, repeats: int = 3,
    noise_sd: float = 0.3, acquiescence_sd: float = 0.2,
    drift: float | Mapping[str, float] = 0.0, profile_range: tuple[float, float] = (0.2, 0.8),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Survey responders with known traits, balanced reverse keying, acquiescence and noise.

    Agent a's latent score on trait d at round t is ``1 + 4 p_{a,d} + drift_d * t``. An item
    keyed +1 has expected answer ``latent``, one keyed -1 ``6 - latent``; every answer adds the
    agent's acquiescence (same sign on both keys, so it cancels after reverse keying when
    keying is balanced) and independent Gaussian noise, then is clipped to [1, 5]. Each item
    is answered ``repeats`` times in both option orders.

    Args:
        rng: Seeded generator.
        n_runs: Number of runs (``run_id`` = ``"run-<i>"``).
        n_agents: Agents per run.
        rounds: Checkpoint rounds.
        items_per_trait: Items per trait (half reverse keyed; must be even).
        repeats: Repeats per item and order.
        noise_sd: SD of per-answer noise.
        acquiescence_sd: SD of the per-agent acquiescence offset.
        drift: Planted change per round, one number for all traits or per trait.
        profile_range: Range of the uniform assigned profiles in [0, 1].

    Returns:
        ``(agents, surveys)`` frames.
    """
    if items_per_trait % 2:
        raise ValueError(f"items_per_trait must be even for balanced keying, got {items_per_trait}")
    dr = np.array([drift.get(t, 0.0) if isinstance(drift, Mapping) else drift for t in TRAITS])
    r_arr = np.asarray(rounds, float)
    keyed = np.tile([1, -1], items_per_trait // 2)
    shape = (n_runs, n_agents, len(rounds), 5, items_per_trait, repeats, 2)
    prof = rng.uniform(*profile_range, size=(n_runs, n_agents, 5))
    acq = rng.normal(0, acquiescence_sd, size=(n_runs, n_agents))
    latent = 1 + 4 * prof[:, :, None, :] + dr[None, None, None, :] * r_arr[None, None, :, None]
    k = keyed[None, None, None, None, :, None, None]
    lat = latent[:, :, :, :, None, None, None]
    x = np.where(k > 0, lat, 6 - lat) + acq[:, :, None, None, None, None, None]
    x = np.clip(x + rng.normal(0, noise_sd, size=shape), 1.0, 5.0)
    idx = np.indices(shape).reshape(len(shape), -1)
    run, ag, rd, tr, it, rep, order = idx
    xs = x.reshape(-1)
    run_names = pl.Series([f"run-{i}" for i in range(n_runs)])
    agent_names = pl.Series([f"a{i:03d}" for i in range(n_agents)])
    item_names = pl.Series([f"{t[:1].upper()}{i + 1}" for t in TRAITS
                            for i in range(items_per_trait)])
    rd_arr = np.asarray(rounds, np.int32)[rd]
    surveys = pl.DataFrame({
        "run_id": run_names.gather(run), "replica": np.zeros(xs.size, np.int32),
        "step": rd_arr, "round": rd_arr, "agent": agent_names.gather(ag),
        "instrument": pl.repeat("synthetic", xs.size, eager=True),
        "item_id": item_names.gather(tr * items_per_trait + it),
        "trait": pl.Series(TRAITS).gather(tr), "keyed": keyed[it].astype(np.int8),
        "mode": pl.repeat("isolated", xs.size, eager=True),
        "order": pl.Series(["ascending", "descending"]).gather(order),
        "paraphrase": np.zeros(xs.size, np.int32), "repeat": rep.astype(np.int32),
        "expected": xs, "argmax": np.rint(xs).astype(np.int32),
        "entropy": np.full(xs.size, 1.0), "refused": np.zeros(xs.size, bool),
    }, schema=SURVEYS_SCHEMA)
    ids = [f"a{i:03d}" for i in range(n_agents)]
    agents = pl.concat([agents_frame(f"run-{r}", 0, ids, [None] * n_agents, prof[r])
                        for r in range(n_runs)])
    return agents, surveys


def planted_surveys(agents: pl.DataFrame, rng: np.random.Generator, *, loading: float = 0.5,
                    noise_sd: float = 0.5, items_per_trait: int = 4) -> pl.DataFrame:
    """Self-reports of given agents (scripted ones are never surveyed), with a planted link.

    Agent a's latent score on trait d is ``3 + 4 * loading * (p_{a,d} - 0.5)`` on a 1-5
    scale; an item keyed +1 has expected answer ``latent``, one keyed -1 ``6 - latent``;
    each answer adds Gaussian noise (``noise_sd``) and is clipped to [1, 5]. One
    administration (round 1, ``isolated``).

    Args:
        agents: an agents frame with ``run_id, replica, agent`` and the five traits.
        rng: Seeded generator.
        loading: 0 plants no link; 1 spans the whole scale.
        noise_sd: SD of per-answer noise.
        items_per_trait: items per trait (half reverse keyed; must be even).

    Returns:
        A surveys frame (schema of :data:`SURVEYS_SCHEMA` plus ``stage`` and ``probs``).
    """
    if items_per_trait % 2:
        raise ValueError(f"items_per_trait must be even for balanced keying, got {items_per_trait}")
    prof = agents.select(TRAITS).to_numpy().astype(float)
    latent = 3 + 4 * loading * (prof - 0.5)
    keyed = np.tile([1, -1], items_per_trait // 2)
    x = np.where(keyed[None, None, :] > 0, latent[:, :, None], 6 - latent[:, :, None])
    x = np.clip(x + rng.normal(0, noise_sd, size=x.shape), 1.0, 5.0)
    a, t, i = (v.reshape(-1) for v in np.indices(x.shape))
    size = x.size
    return pl.DataFrame({
        "run_id": agents["run_id"].gather(a), "replica": agents["replica"].gather(a),
        "step": np.ones(size, np.int32), "round": np.ones(size, np.int32),
        "agent": agents["agent"].gather(a), "instrument": pl.repeat("synthetic", size, eager=True),
        "item_id": [f"{TRAITS[tt][:1].upper()}{ii + 1}" for tt, ii in zip(t, i, strict=True)],
        "trait": pl.Series(TRAITS).gather(t), "keyed": keyed[i].astype(np.int8),
        "mode": pl.repeat("isolated", size, eager=True),
        "order": pl.repeat("asc", size, eager=True), "paraphrase": np.zeros(size, np.int32),
        "repeat": np.zeros(size, np.int32), "expected": x.reshape(-1),
        "argmax": np.rint(x.reshape(-1)).astype(np.int32), "entropy": np.ones(size),
        "refused": np.zeros(size, bool),
    }, schema=SURVEYS_SCHEMA).with_columns(
        pl.lit("survey").alias("stage"), pl.lit([0.2] * 5).alias("probs"))


# --------------------------------------------------------------------------- dialogues


def _pseudo_words(n: int, rng: np.random.Generator) -> list[str]:
    cons, vows = list("bdfgklmnprstvz"), list("aeiou")
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(cons) + rng.choice(vows) for _ in range(3)))
    return sorted(words)


def synthetic_dialogues(
    rng: np.random.Generator, copy_rate: float, *, n_runs: int = 4, n_conversations: int = 6,
    n_turns: int = 10, words_per_turn: int = 20, vocab_size: int = 300,
    function_share: float = 0.4, stage: str = "chat",
) -> pl.DataFrame:
    """Two-speaker dialogues in which each turn copies a fraction of the previous turn.

    Each speaker has a private style: a Zipf distribution over its own random ordering of a
    shared pseudo-word vocabulary, plus its own mix of function words (drawn from the
    LSM-style word lists). Turn t > 0 takes ``round(copy_rate * words_per_turn)`` of its words
    from the previous turn (the other speaker's, sampled without replacement) and the rest
    from its own style. ``copy_rate = 0`` gives no alignment beyond chance.

    Args:
        rng: Seeded generator.
        copy_rate: Planted copy fraction p in [0, 1].
        n_runs: Runs (clusters).
        n_conversations: Conversations (groups) per run.
        n_turns: Turns per conversation, speakers alternating.
        words_per_turn: Tokens per turn.
        vocab_size: Size of the content vocabulary.
        function_share: Expected share of function words in a speaker's own words.
        stage: Stage name of the dialogue.

    Returns:
        An events frame of ``kind == "message"`` rows.
    """
    from analysis.text import load_categories

    vocab = np.array(_pseudo_words(vocab_size, rng))
    func_by_cat = [sorted(w for w in ws if "'" not in w and " " not in w)
                   for ws in load_categories().values()]
    zipf = 1.0 / np.arange(1, vocab_size + 1)
    zipf /= zipf.sum()
    n_copy = round(copy_rate * words_per_turn)
    rows: list[dict[str, Any]] = []
    for r in range(n_runs):
        for c in range(n_conversations):
            spk = [f"c{c}a", f"c{c}b"]
            perms = [rng.permutation(vocab_size) for _ in spk]
            catw = [rng.dirichlet(np.ones(len(func_by_cat))) for _ in spk]
            prev: list[str] = []
            for t in range(n_turns):
                s = t % 2
                words: list[str] = []
                if t > 0 and n_copy > 0:
                    words += list(rng.choice(prev, size=min(n_copy, len(prev)), replace=False))
                for _ in range(words_per_turn - len(words)):
                    if rng.random() < function_share:
                        cat = func_by_cat[rng.choice(len(func_by_cat), p=catw[s])]
                        words.append(str(rng.choice(cat)))
                    else:
                        words.append(str(vocab[perms[s][rng.choice(vocab_size, p=zipf)]]))
                words = [str(w) for w in rng.permutation(words)]
                rows.append({"run_id": f"run-{r}", "round": 0, "stage": stage, "kind": "message",
                             "group": f"g{c}", "turn": t, "agent": spk[s],
                             "partners": [spk[1 - s]], "text": " ".join(words)})
                prev = words
    return events_frame(rows)


# --------------------------------------------------------------------------- repeated games

STRATEGIES: tuple[str, ...] = (
    "tit_for_tat", "grim_trigger", "always_defect", "always_cooperate", "random", "alternate",
)
_PD = {("C", "C"): 3.0, ("C", "D"): 0.0, ("D", "C"): 5.0, ("D", "D"): 1.0}


def _move(strategy: str, mine: list[str], theirs: list[str], rng: np.random.Generator) -> str:
    if strategy == "tit_for_tat":
        return theirs[-1] if theirs else "C"
    if strategy == "grim_trigger":
        return "D" if "D" in theirs else "C"
    if strategy == "always_defect":
        return "D"
    if strategy == "always_cooperate":
        return "C"
    if strategy == "random":
        return "C" if rng.random() < 0.5 else "D"
    if strategy == "alternate":
        return "C" if len(mine) % 2 == 0 else "D"
    raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}")


def repeated_game(
    pairs: Sequence[tuple[str, str]], n_rounds: int, rng: np.random.Generator, *,
    run_id: str = "run-0", replica: int = 0, stage: str = "play",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scripted fixed-partner prisoner's dilemma (payoffs T=5, R=3, P=1, S=0).

    Strategies: ``tit_for_tat`` (C first, then copy the partner), ``grim_trigger`` (C until
    the partner's first D, then D forever), ``always_defect``, ``always_cooperate``,
    ``random`` (C with probability 0.5), ``alternate`` (C, D, C, ...).

    Args:
        pairs: One ``(strategy_a, strategy_b)`` per fixed pair.
        n_rounds: Rounds played (round = 0 .. n_rounds - 1).
        rng: Seeded generator (used by ``random``).
        run_id: Run id of the records.
        replica: Replica index.
        stage: Stage name.

    Returns:
        ``(events, agents)``; agent ids are ``p<i>a`` / ``p<i>b`` with ``policy`` = strategy.
    """
    rows: list[dict[str, Any]] = []
    ids, pols = [], []
    options = ["cooperate", "defect"]
    for i, (sa, sb) in enumerate(pairs):
        a, b = f"p{i}a", f"p{i}b"
        ids += [a, b]
        pols += [sa, sb]
        hist: dict[str, list[str]] = {a: [], b: []}
        score = {a: 0.0, b: 0.0}
        for t in range(n_rounds):
            ma, mb = _move(sa, hist[a], hist[b], rng), _move(sb, hist[b], hist[a], rng)
            for me, other, m, o in ((a, b, ma, mb), (b, a, mb, ma)):
                pay = _PD[(m, o)]
                score[me] += pay
                ci = 0 if m == "C" else 1
                rows.append({"run_id": run_id, "replica": replica, "step": t, "round": t,
                             "stage": stage, "kind": "choice", "group": f"g{i}", "agent": me,
                             "partners": [other], "choice": options[ci], "choice_index": ci,
                             "options": options,
                             "option_probs": [1.0 - ci, float(ci)], "payoff": pay,
                             "score": score[me]})
            hist[a].append(ma)
            hist[b].append(mb)
    return events_frame(rows), agents_frame(run_id, replica, ids, pols)


# --------------------------------------------------------------------------- naming game


