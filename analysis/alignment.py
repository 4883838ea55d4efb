"""Linguistic alignment between agents, always reported against surrogate baselines.

Conversation = the messages of one ``(run_id, replica, step, round, stage, group)`` in turn
order. A *turn pair* is two consecutive messages by different speakers (prime -> target).
Measures (definitions and references: docs/measurement.md, linguistic alignment):

- ``lsm_pairs``: Language Style Matching over the nine LSM-style categories, per speaker pair
  on the pooled words of each speaker, ``1 - |p1 - p2| / (p1 + p2 + 0.0001)`` averaged over
  categories (rates in percent of tokens) and then over pairs (the dyadic LSM of Ireland &
  Pennebaker 2010 when there are two speakers);
- ``lsm_group``: Gonzales, Hancock & Pennebaker (2010)'s group LSM: each member against the
  pooled words of the rest of the group, averaged over categories and then over members;
- LSM is undefined for a speaker without a single function word (an empty message included):
  the formula would score two such speakers 1.0 on joint absence. Such pairs (members) are
  left out of the means, and counted (``lsm_undefined``);
- ``rlsm``: reciprocal LSM (Müller-Frommeyer, Frommeyer & Kauffeld 2019) per turn pair and
  category; a category the target uses but the previous turn lacks scores 0, one absent from
  both turns is undefined and skipped. A speaker's rLSM averages each category over the
  speaker's turns first, then the categories; a conversation's averages its speakers;
- ``lexical_cosine`` (ALIGN lexical_tok1) and ``lexical_overlap``
  (``|V(target) ∩ V(prime)| / |V(target)|``) per turn pair;
- ``semantic_cosine``: cosine of TF-IDF + truncated-SVD embeddings per turn pair;
- ``convergence_*``: OLS slope of a turn-pair measure on the turn index, per conversation.

Turn-pair measures are averaged per target speaker, then over speakers of a conversation.
Surrogates (``shuffle``: each speaker's own messages re-ordered; ``cross``: speakers who
never met) are described at :func:`surrogate_events`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from analysis.lsm import lsm_score, nanmean, rlsm_by_category
from analysis.stats import RUN_KEYS, as_frame, cluster_bootstrap, ols
from analysis.text import (
    LSM_CATEGORIES,
    SemanticSpace,
    category_counts,
    fit_semantic_space,
    tokenize,
)

__all__ = [
    "CONV_KEYS",
    "MEASURES",
    "alignment_effects",
    "category_rates",
    "conversation_alignment",
    "lsm",
    "messages",
    "surrogate_events",
    "turn_alignment",
]

CONV_KEYS: tuple[str, ...] = ("run_id", "replica", "step", "round", "stage", "group")
_TURN_MEASURES = ("rlsm", "lexical_cosine", "lexical_overlap", "semantic_cosine")
MEASURES: tuple[str, ...] = (
    "lsm_pairs", "lsm_group", *_TURN_MEASURES, "convergence_lexical", "convergence_semantic",
)


def messages(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Successful message rows in conversation and turn order, with a ``conv`` index.

    Args:
        events: Event records.

    Returns:
        Message rows sorted by conversation keys and turn, plus integer column ``conv``.
    """
    df = as_frame(events).filter(
        (pl.col("kind") == "message") & (pl.col("status") == "ok") & pl.col("text").is_not_null()
    ).sort([*CONV_KEYS, "turn"])
    keys = df.select(CONV_KEYS).unique(maintain_order=True).with_row_index("conv")
    keys = keys.with_columns(pl.col("conv").cast(pl.Int64))
    return df.join(keys, on=list(CONV_KEYS), how="left", nulls_equal=True, maintain_order="left")


def category_rates(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Per-message token count and LSM-style category rates (percent of tokens).

    Args:
        events: Event records.

    Returns:
        Message rows plus ``n_tokens`` and one ``rate_<category>`` column per category.
    """
    msgs = messages(events)
    toks = [tokenize(t) for t in msgs["text"]]
    counts = np.array([category_counts(t) for t in toks]).reshape(len(toks), 9)
    n = np.array([len(t) for t in toks], float)
    rates = np.divide(100 * counts, n[:, None], out=np.zeros_like(counts), where=n[:, None] > 0)
    return msgs.with_columns(pl.Series("n_tokens", n.astype(np.int64)),
                             *[pl.Series(f"rate_{c}", rates[:, i])
                               for i, c in enumerate(LSM_CATEGORIES)])


@dataclass
class _Corpus:
    keys: pl.DataFrame
    convs: list[tuple[np.ndarray, np.ndarray]]
    turns: list[np.ndarray]
    counters: list[Counter[str]]
    norms: np.ndarray
    cats: np.ndarray
    ntok: np.ndarray
    emb: np.ndarray


def _embed(texts: list[str | None], n_components: int | None,
           space: SemanticSpace | None) -> np.ndarray:
    """Semantic embeddings, or NaN where none can exist (not asked for, or no tokens at all)."""
    if space is None and n_components is not None and any(tokenize(x) for x in texts):
        space = fit_semantic_space(texts, n_components)
    if space is None:
        return np.full((len(texts), 1), np.nan)
    return space.transform(texts)


def _corpus(events: pl.DataFrame | pl.LazyFrame, n_components: int | None,
            space: SemanticSpace | None) -> tuple[_Corpus, SemanticSpace | None]:
    msgs = messages(events)
    if msgs.height == 0:
        raise ValueError("no successful message rows (kind == 'message') in the events frame")
    texts = msgs["text"].to_list()
    toks = [tokenize(t) for t in texts]
    counters = [Counter(t) for t in toks]
    convs, turns = [], []
    for part in msgs.with_row_index("_i").partition_by("conv", maintain_order=True):
        convs.append((part["agent"].to_numpy(), part["_i"].to_numpy().astype(np.int64)))
        turns.append(part["turn"].to_numpy())
    return _Corpus(
        keys=msgs.select([*CONV_KEYS, "conv"]).unique(maintain_order=True).sort("conv"),
        convs=convs, turns=turns, counters=counters,
        norms=np.array([math.sqrt(sum(v * v for v in c.values())) for c in counters]),
        cats=np.array([category_counts(t) for t in toks]).reshape(len(toks), 9),
        ntok=np.array([len(t) for t in toks], float),
        emb=_embed(texts, n_components, space),
    ), space


def _lsm_value(c: _Corpus, a: np.ndarray, b: np.ndarray) -> float:
    """LSM of the pooled words of messages ``a`` against those of ``b`` (NaN: undefined)."""
    return lsm_score(c.cats[a].sum(0), c.ntok[a].sum(), c.cats[b].sum(0), c.ntok[b].sum())


def _pair_lsm(c: _Corpus, spk: np.ndarray, idx: np.ndarray) -> list[tuple[str, str, float]]:
    names = list(dict.fromkeys(spk.tolist()))
    return [(x, y, _lsm_value(c, idx[spk == x], idx[spk == y]))
            for i, x in enumerate(names) for y in names[i + 1:]]


def _group_lsm(c: _Corpus, spk: np.ndarray, idx: np.ndarray) -> list[float]:
    """Each member's LSM against the rest of the group pooled (Gonzales et al. 2010)."""
    names = list(dict.fromkeys(spk.tolist()))
    return [_lsm_value(c, idx[spk == x], idx[spk != x]) for x in names] if len(names) > 1 else []


def _rlsm_categories(c: _Corpus, p: int, t: int) -> np.ndarray:
    return rlsm_by_category(c.cats[p], c.ntok[p], c.cats[t], c.ntok[t])


def _turn_values(c: _Corpus, p: int, t: int) -> tuple[float, float, float, float]:
    per_cat = _rlsm_categories(c, p, t)
    rl = float(np.nanmean(per_cat)) if np.isfinite(per_cat).any() else np.nan
    cp, ct = c.counters[p], c.counters[t]
    dot = sum(v * cp.get(w, 0) for w, v in ct.items())
    cos = dot / (c.norms[p] * c.norms[t]) if c.norms[p] * c.norms[t] > 0 else np.nan
    ov = len(ct.keys() & cp.keys()) / len(ct) if ct else np.nan
    return rl, float(cos), float(ov), float(c.emb[p] @ c.emb[t])


def _turn_rows(c: _Corpus, spk: np.ndarray, idx: np.ndarray) -> list[tuple]:
    return [(k, spk[k - 1], spk[k], *_turn_values(c, int(idx[k - 1]), int(idx[k])))
            for k in range(1, len(idx)) if spk[k] != spk[k - 1]]


def _speaker_rlsm(c: _Corpus, spk: np.ndarray, idx: np.ndarray) -> list[float]:
    """Each target speaker's rLSM: categories averaged over turns first, then each other."""
    per: dict[str, list[np.ndarray]] = {}
    for k in range(1, len(idx)):
        if spk[k] != spk[k - 1]:
            per.setdefault(spk[k], []).append(_rlsm_categories(c, int(idx[k - 1]), int(idx[k])))
    out = []
    for cats in per.values():
        m = np.array(cats)
        by_cat = [nanmean(m[:, j]) for j in range(m.shape[1])]
        out.append(nanmean(by_cat))
    return out


def _conv_values(c: _Corpus, spk: np.ndarray, idx: np.ndarray) -> dict[str, float]:
    pairs = [v for *_, v in _pair_lsm(c, spk, idx)]
    members = _group_lsm(c, spk, idx)
    out = {"lsm_pairs": nanmean(pairs), "lsm_group": nanmean(members),
           "lsm_undefined": float(sum(not np.isfinite(v) for v in pairs)),
           "rlsm": nanmean(_speaker_rlsm(c, spk, idx))}
    rows = _turn_rows(c, spk, idx)
    arr = np.array([r[3:] for r in rows], float).reshape(len(rows), 4)
    tgt = np.array([r[2] for r in rows])
    for j, m in enumerate(_TURN_MEASURES):
        if m == "rlsm":
            continue
        per = [np.nanmean(arr[tgt == s, j]) for s in dict.fromkeys(tgt.tolist())
               if np.isfinite(arr[tgt == s, j]).any()]
        out[m] = float(np.mean(per)) if per else np.nan
    k = np.array([r[0] for r in rows], float)
    out["convergence_lexical"] = ols(k, arr[:, 1]).slope
    out["convergence_semantic"] = ols(k, arr[:, 3]).slope
    return out


def _shuffle(spk: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    new = idx.copy()
    for s in dict.fromkeys(spk.tolist()):
        slots = np.flatnonzero(spk == s)
        new[slots] = idx[slots][rng.permutation(slots.size)]
    return new


def _cross_views(c: _Corpus, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(c.convs)
    if n < 2:
        raise ValueError("a cross-conversation surrogate needs at least 2 conversations")
    order = rng.permutation(n)
    partner = np.empty(n, np.int64)
    partner[order] = np.roll(order, -1)
    views = []
    for i in range(n):
        spk, idx = c.convs[i]
        ospk, oidx = c.convs[int(partner[i])]
        others = list(oidx[ospk != ospk[0]])
        new, keep = idx.copy(), len(idx)
        for k in range(len(idx)):
            if spk[k] != spk[0]:
                if not others:
                    keep = k
                    break
                new[k] = others.pop(0)
        views.append((spk[:keep], new[:keep]))
    return views


def _views(c: _Corpus, kind: str, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    if kind == "real":
        return c.convs
    if kind == "shuffle":
        return [(s, _shuffle(s, i, rng)) for s, i in c.convs]
    if kind == "cross":
        return _cross_views(c, rng)
    raise ValueError(f"surrogate kind {kind!r} is not one of 'shuffle', 'cross'")


def lsm(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Conversation-level LSM per pair of speakers.

    Args:
        events: Event records with message rows.

    Returns:
        Conversation keys plus ``agent_a, agent_b, lsm``; ``lsm`` is null for a pair in which
        a speaker used no function word (undefined, see the module docstring).
    """
    c, _ = _corpus(events, None, None)
    rows = [(i, a, b, v) for i, (s, x) in enumerate(c.convs) for a, b, v in _pair_lsm(c, s, x)]
    out = _keyed(c, rows, {"conv": pl.Int64, "agent_a": pl.String, "agent_b": pl.String,
                           "lsm": pl.Float64})
    return out.with_columns(pl.col("lsm").fill_nan(None))


def turn_alignment(
    events: pl.DataFrame | pl.LazyFrame, n_components: int = 50,
    space: SemanticSpace | None = None,
) -> pl.DataFrame:
    """Turn-pair measures (rLSM, lexical cosine/overlap, semantic cosine).

    Args:
        events: Event records with message rows.
        n_components: SVD dimensions when ``space`` is not given (fitted on these messages).
        space: A fitted :class:`analysis.text.SemanticSpace` to reuse.

    Returns:
        Conversation keys plus ``turn`` (of the target), ``prime_agent``, ``target_agent``
        and the four measures.
    """
    c, _ = _corpus(events, n_components, space)
    rows = [(i, int(c.turns[i][r[0]]), *r[1:]) for i, (s, x) in enumerate(c.convs)
            for r in _turn_rows(c, s, x)]
    return _keyed(c, rows, {"conv": pl.Int64, "turn": pl.Int64, "prime_agent": pl.String,
                            "target_agent": pl.String,
                            **{m: pl.Float64 for m in _TURN_MEASURES}})


def _keyed(c: _Corpus, rows: list[tuple[Any, ...]], schema: dict[str, Any]) -> pl.DataFrame:
    """Rows that start with a conversation index, joined to that conversation's keys."""
    df = pl.DataFrame(rows, schema=schema, orient="row")
    return c.keys.join(df, on="conv").drop("conv")


def conversation_alignment(
    events: pl.DataFrame | pl.LazyFrame, n_components: int = 50,
    space: SemanticSpace | None = None,
) -> pl.DataFrame:
    """All measures per conversation (see the module docstring for definitions).

    Takes the same arguments as :func:`turn_alignment` and returns the conversation keys plus
    one column per name in ``MEASURES`` and ``lsm_undefined`` (speaker pairs left out of
    ``lsm_pairs`` because a speaker used no function word).
    """
    c, _ = _corpus(events, n_components, space)
    vals = [_conv_values(c, s, x) for s, x in c.convs]
    return c.keys.with_columns(*[pl.Series(m, [v[m] for v in vals], pl.Float64)
                                 for m in (*MEASURES, "lsm_undefined")]).drop("conv")


def surrogate_events(
    events: pl.DataFrame | pl.LazyFrame, kind: str, rng: np.random.Generator
) -> pl.DataFrame:
    """Message rows of a surrogate corpus (texts rearranged, slots and speakers kept).

    Args:
        events: Event records with message rows.
        kind: ``"shuffle"`` (within-speaker turn shuffle) or ``"cross"`` (other speakers'
            messages taken from another conversation).
        rng: Seeded generator.

    Returns:
        Message rows with replaced ``text`` (cross surrogates are truncated to the shorter
        conversation).
    """
    msgs = messages(events)
    c, _ = _corpus(msgs, 2, None)
    texts = msgs["text"].to_list()
    keep, new_text = [], []
    for (_s, idx), (_, new) in zip(c.convs, _views(c, kind, rng), strict=True):
        keep += idx[: len(new)].tolist()
        new_text += [texts[j] for j in new]
    out = msgs[keep].with_columns(pl.Series("text", new_text, pl.String))
    return out.drop("conv")


def alignment_effects(
    events: pl.DataFrame | pl.LazyFrame, rng: np.random.Generator, *,
    surrogates: Sequence[str] = ("shuffle", "cross"), n_surrogates: int = 20,
    measures: Sequence[str] = MEASURES, n_components: int = 50, n_boot: int = 2000,
    level: float = 0.95, cluster: Sequence[str] = RUN_KEYS,
) -> pl.DataFrame:
    """Every measure, real minus surrogate, with a cluster-bootstrap interval.

    Per conversation: effect = real value - mean over ``n_surrogates`` surrogate draws. The
    estimate is the mean effect over conversations; its interval resamples clusters (runs by
    default; pass ``cluster=CONV_KEYS`` to resample conversations). The semantic space is
    fitted once on the real messages and reused for surrogates. Note that ``lsm`` is order
    free, so its ``shuffle`` effect is 0 by construction.

    Args:
        events: Event records with message rows.
        rng: Seeded generator (surrogates and bootstrap).
        surrogates: Surrogate kinds.
        n_surrogates: Surrogate draws per kind.
        measures: Subset of ``MEASURES``.
        n_components: SVD dimensions.
        n_boot: Bootstrap resamples.
        level: Confidence level.
        cluster: Resampling unit.

    Returns:
        One row per measure and surrogate kind (``baseline``): ``real, surrogate, effect,
        ci_low, ci_high, n_clusters, n_conversations``.
    """
    c, _ = _corpus(events, n_components, None)
    real = [_conv_values(c, s, x) for s, x in c.convs]
    frames = []
    for kind in surrogates:
        draws = [[_conv_values(c, s, x) for s, x in _views(c, kind, rng)]
                 for _ in range(n_surrogates)]
        for m in measures:
            r = np.array([v[m] for v in real])
            sur = np.nanmean(np.array([[v[m] for v in d] for d in draws]), axis=0)
            frames.append(c.keys.with_columns(
                pl.lit(m).alias("measure"), pl.lit(kind).alias("baseline"),
                pl.Series("real", r), pl.Series("sur", sur),
                pl.Series("effect", r - sur)))
    long = pl.concat(frames).filter(pl.col("effect").is_not_nan())
    ci = cluster_bootstrap(long, "effect", rng, cluster=cluster, by=("measure", "baseline"),
                           n_boot=n_boot, level=level)
    means = long.group_by("measure", "baseline").agg(
        pl.col("real").mean(), pl.col("sur").mean().alias("surrogate"),
        pl.len().alias("n_conversations"))
    return means.join(ci, on=["measure", "baseline"]).select(
        "measure", "baseline", "real", "surrogate", pl.col("estimate").alias("effect"),
        "ci_low", "ci_high", "n_clusters", "n_conversations").sort("measure", "baseline")
