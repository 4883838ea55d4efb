"""Psychometrics of questionnaire answers: scoring, reliability, validity, response quality.

Input is the long survey table, one row per administered item::

    run_id, replica, agent, instrument, item_id, trait, keyed (+1/-1), order (option order,
    e.g. "asc"/"desc"), paraphrase, repeat, expected (f64, 1..5), argmax (i32), entropy,
    refused (bool)

Answers are on the scale as labelled (the administering code maps displayed options back to
scale values, so ``order`` only records how they were shown). Refused rows and null answers
are dropped, never imputed. Reverse keying is ``x' = scale_min + scale_max - x``.

Reliability methods (numpy, no GPL code):

- Cronbach's alpha ``k/(k-1) * (1 - sum(var_i) / var(total))`` on the respondents x items
  matrix of keyed answers (listwise deletion of incomplete respondents).
- McDonald's omega_total from a one-factor model fitted by iterated principal-axis
  factoring of the item correlation matrix (start: squared multiple correlations; iterate
  communalities = squared loadings until the change is < 1e-6; communalities capped at .995
  against Heywood cases). Loadings are rescaled to the covariance metric,
  ``omega = (sum lambda)^2 / ((sum lambda)^2 + sum psi)`` with ``psi = var - lambda^2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats as sps

from sim.errors import TraitLabError

__all__ = [
    "RESPONDENT",
    "acquiescence_index",
    "answered_rows",
    "convergent_validity",
    "domain_scores",
    "manipulation_check",
    "option_order_symmetry",
    "refusal_rate",
    "require_columns",
    "reverse_key",
    "scale_top",
    "survey_scores",
    "with_acquiescence",
]

RESPONDENT: tuple[str, ...] = ("run_id", "replica", "agent")
"""Columns that identify one respondent (an agent in one run)."""


def require_columns(df: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    """Raise a clear error naming ``what`` when ``df`` lacks any of ``cols``."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TraitLabError(
            f"{what}: survey frame lacks columns {missing}; it has {df.columns}. Fix: pass "
            "the survey table (run_id, replica, agent, instrument, item_id, trait, keyed, "
            "order, paraphrase, repeat, expected, argmax, entropy, refused)."
        )


def answered_rows(df: pl.DataFrame, value: str) -> pl.DataFrame:
    """The rows whose ``value`` is a number (refusals and NaN dropped)."""
    x = pl.col(value).cast(pl.Float64)
    out = df.filter(x.is_not_null() & x.is_not_nan())
    if "refused" in out.columns:
        out = out.filter(~pl.col("refused").fill_null(False))
    return out


def scale_top(df: pl.DataFrame, scale_min: int = 1, scale_max: int | None = None) -> pl.Expr:
    """The highest scale value of each row: ``scale_max``, else read from ``probs``, else 5.

    A survey row's ``probs`` holds one probability per scale point, so its length tells the
    scale the item was asked on (1..5, 1..7, ...).
    """
    if scale_max is not None:
        return pl.lit(float(scale_max))
    if "probs" in df.columns:
        return (pl.col("probs").list.len() + (scale_min - 1)).cast(pl.Float64)
    return pl.lit(5.0)


def reverse_key(
    df: pl.DataFrame, *, value: str = "expected", scale_min: int = 1,
    scale_max: int | None = None, out: str = "scored",
) -> pl.DataFrame:
    """Add the keyed answer column: ``x`` for +1 items, ``min + max - x`` for -1 items.

    Args:
        df: survey rows with ``keyed`` and ``value``.
        value: answer column (``expected`` or ``argmax``).
        scale_min: lowest scale value.
        scale_max: highest scale value; by default read per row from the length of its
            ``probs`` list (one probability per scale point), else 5.
        out: name of the new column.

    Returns:
        ``df`` with ``out`` (f64) added; refused/null answers stay null.
    """
    require_columns(df, ["keyed", value], "reverse_key")
    x = pl.col(value).cast(pl.Float64)
    top = scale_top(df, scale_min, scale_max)
    scored = pl.when(pl.col("keyed") < 0).then(scale_min + top - x).otherwise(x)
    if "refused" in df.columns:
        scored = pl.when(pl.col("refused").fill_null(False)).then(None).otherwise(scored)
    return df.with_columns(scored.alias(out))


def domain_scores(
    df: pl.DataFrame, *, by: Sequence[str] = (*RESPONDENT, "instrument"),
    value: str = "expected", scale_min: int = 1, scale_max: int | None = None,
) -> pl.DataFrame:
    """Domain (trait) score: the mean over the trait's items of each item's keyed answer.

    Every answer is reverse keyed (:func:`reverse_key`); an item's answers inside a group
    (repeats, paraphrases, option orders: add them to ``by`` to keep them apart) are averaged
    first, then items are averaged with equal weight, so a refused answer never changes the
    weight of the item it belongs to. Refused answers are dropped and counted.

    Returns:
        Columns ``by + [trait, score, n_items, n_answers, n_refused]``.
    """
    require_columns(df, [*by, "trait", "item_id", "keyed", value], "domain_scores")
    keyed = reverse_key(df, value=value, scale_min=scale_min, scale_max=scale_max)
    # Fixed orders before each mean, so the same data always sums in the same order and
    # gives bit-identical scores.
    per_item = keyed.group_by([*by, "trait", "item_id"], maintain_order=True).agg(
        pl.col("scored").mean().alias("item"),
        pl.col("scored").count().alias("n"),
        pl.col("scored").is_null().sum().alias("refused"),
    )
    return (
        per_item.sort([*by, "trait", "item_id"])
        .group_by([*by, "trait"], maintain_order=True)
        .agg(
            pl.col("item").mean().alias("score"),
            pl.col("item").count().alias("n_items"),
            pl.col("n").sum().alias("n_answers"),
            pl.col("refused").sum().alias("n_refused"),
        )
        .sort([*by, "trait"])
    )


ADMINISTRATION: tuple[str, ...] = ("stage", "round", "mode")
"""Columns of survey records that tell one administration of a survey stage apart."""


def survey_scores(surveys: pl.DataFrame, *, value: str = "expected",
                  by: Sequence[str] = ()) -> pl.DataFrame:
    """Domain scores of a run's survey stages: one per respondent, administration and trait.

    ``surveys`` is :attr:`analysis.io.Run.surveys` (or several runs' concatenated); each
    survey stage execution (``stage``, ``round``, ``mode``) is scored on its own, averaging
    orders, paraphrases and repeats unless they are listed in ``by``.

    The respondent's acquiescence index (:func:`acquiescence_index`) of the same
    administration stands beside every trait score: with unbalanced keying (IPIP-50's
    Emotional Stability 8:2, Intellect 7:3) yea-saying moves the score itself.

    Returns:
        Columns ``run_id, replica, agent, instrument, stage, round, mode, *by, trait, score,
        n_items, n_answers, n_refused, acquiescence``.
    """
    keys = (*RESPONDENT, "instrument", *ADMINISTRATION, *by)
    return with_acquiescence(domain_scores(surveys, by=keys, value=value), surveys, keys,
                             value=value)


def with_acquiescence(scores: pl.DataFrame, surveys: pl.DataFrame, keys: Sequence[str], *,
                      value: str = "expected") -> pl.DataFrame:
    """``scores`` with each respondent's acquiescence index (per ``keys``) joined on."""
    acq = acquiescence_index(surveys, by=keys, value=value).select(*keys, "acquiescence")
    return scores.join(acq, on=list(keys), how="left", nulls_equal=True)


def convergent_validity(
    df: pl.DataFrame, instrument_a: str, instrument_b: str, *,
    respondent: Sequence[str] = RESPONDENT, value: str = "expected",
    scale_min: int = 1, scale_max: int = 5,
) -> pl.DataFrame:
    """Same-trait correlation of domain scores between two instruments (MTMM summary).

    Returns:
        Columns ``trait, r`` (Pearson, convergent), ``mean_abs_heterotrait`` (mean |r| of the
        trait on ``instrument_a`` with the other traits on ``instrument_b``),
        ``discriminant_gap`` (r minus that) and ``n`` respondents.
    """
    scores = domain_scores(df.filter(pl.col("instrument").is_in([instrument_a, instrument_b])),
                           by=[*respondent, "instrument"], value=value,
                           scale_min=scale_min, scale_max=scale_max)
    wide = {}
    for inst in (instrument_a, instrument_b):
        part = scores.filter(pl.col("instrument") == inst)
        if part.is_empty():
            raise TraitLabError(f"convergent_validity: no answers for instrument '{inst}'.")
        wide[inst] = part.pivot(on="trait", index=list(respondent), values="score")
    joined = wide[instrument_a].join(wide[instrument_b], on=list(respondent), suffix="__b")
    traits = sorted(set(wide[instrument_a].columns) & set(wide[instrument_b].columns)
                    - set(respondent))
    rows = []
    for t in traits:
        pair = joined.select(t, f"{t}__b").drop_nulls().to_numpy()
        r = float(np.corrcoef(pair.T)[0, 1]) if len(pair) > 2 else float("nan")
        hetero = []
        for u in traits:
            if u != t:
                other = joined.select(t, f"{u}__b").drop_nulls().to_numpy()
                hetero.append(abs(float(np.corrcoef(other.T)[0, 1])))
        mean_het = float(np.mean(hetero)) if hetero else float("nan")
        rows.append({"trait": t, "r": r, "mean_abs_heterotrait": mean_het,
                     "discriminant_gap": r - mean_het, "n": len(pair)})
    return pl.DataFrame(rows)


def _cohens_d(high: np.ndarray, low: np.ndarray) -> float:
    n1, n2 = len(high), len(low)
    if n1 < 2 or n2 < 2:
        return float("nan")
    pooled = ((n1 - 1) * high.var(ddof=1) + (n2 - 1) * low.var(ddof=1)) / (n1 + n2 - 2)
    return float((high.mean() - low.mean()) / np.sqrt(pooled)) if pooled > 0 else float("nan")


def manipulation_check(
    scores: pl.DataFrame, assigned: pl.DataFrame, *, on: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> pl.DataFrame:
    """Does the measured trait follow the assigned one?

    Args:
        scores: output of :func:`domain_scores` (``trait``, ``score`` plus respondent keys
            and ``instrument``).
        assigned: one row per respondent and trait with ``trait`` and ``assigned`` in [0, 1].
        on: respondent columns to join on; default: those of ``run_id, replica, agent``
            present in ``assigned``.
        threshold: personas above it are "high", below it "low" (equal ones are skipped).

    Returns:
        Per ``instrument, trait``: ``spearman_rho``, ``p_value``, ``cohens_d`` (high minus
        low, pooled SD), ``n``, ``n_high``, ``n_low``.
    """
    keys = list(on) if on is not None else [c for c in RESPONDENT if c in assigned.columns]
    require_columns(scores, [*keys, "instrument", "trait", "score"], "manipulation_check(scores)")
    require_columns(assigned, [*keys, "trait", "assigned"], "manipulation_check(assigned)")
    joined = scores.join(assigned.select(*keys, "trait", "assigned"), on=[*keys, "trait"])
    rows = []
    for (inst, trait), part in joined.group_by(["instrument", "trait"], maintain_order=True):
        part = part.drop_nulls(["score", "assigned"])
        a = part["assigned"].to_numpy().astype(float)
        s = part["score"].to_numpy().astype(float)
        if len(a) > 2 and np.ptp(a) > 0 and np.ptp(s) > 0:
            res = sps.spearmanr(a, s)
            rho, p = float(res.statistic), float(res.pvalue)
        else:
            rho = p = float("nan")
        hi, lo = s[a > threshold], s[a < threshold]
        rows.append({"instrument": inst, "trait": trait, "spearman_rho": rho, "p_value": p,
                     "cohens_d": _cohens_d(hi, lo), "n": len(s), "n_high": len(hi),
                     "n_low": len(lo)})
    return pl.DataFrame(rows).sort(["instrument", "trait"])


def option_order_symmetry(
    df: pl.DataFrame, *, forward: str = "asc", reverse: str = "desc",
    order_col: str = "order", by: Sequence[str] = ("instrument",),
    pair_on: Sequence[str] = (*RESPONDENT, "instrument", "item_id", "paraphrase", "repeat"),
) -> pl.DataFrame:
    """Compare answers to the same item under ascending vs descending option order.

    Returns:
        Per ``by``: ``n_pairs``, ``agreement`` (share of equal ``argmax``, OOS),
        ``mean_abs_shift`` (mean ``|argmax_fwd - argmax_rev|``, MAS), ``mean_abs_diff``
        and ``correlation`` of ``expected``, and ``mean_shift`` (rev minus fwd expected).
    """
    keys = [c for c in pair_on if c in df.columns]
    require_columns(df, [*keys, *by, order_col, "expected", "argmax"], "option_order_symmetry")
    ok = answered_rows(df, "expected")
    cols = list(dict.fromkeys([*keys, *by]))
    fwd = ok.filter(pl.col(order_col) == forward).select(*cols, "expected", "argmax")
    rev = ok.filter(pl.col(order_col) == reverse).select(*keys, "expected", "argmax")
    pairs = fwd.join(rev, on=keys, suffix="_rev")
    if pairs.is_empty():
        raise TraitLabError(
            f"option_order_symmetry: no item answered under both '{forward}' and '{reverse}' "
            f"in column '{order_col}'. Fix: administer both option orders, or name them via "
            "forward=/reverse=."
        )
    rows = []
    for group, part in pairs.group_by(list(by), maintain_order=True):
        e1, e2 = part["expected"].to_numpy(), part["expected_rev"].to_numpy()
        a1, a2 = part["argmax"].to_numpy(), part["argmax_rev"].to_numpy()
        corr = float(np.corrcoef(e1, e2)[0, 1]) if np.std(e1) > 0 and np.std(e2) > 0 \
            else float("nan")
        rows.append({**dict(zip(by, group, strict=True)), "n_pairs": len(part),
                     "agreement": float(np.mean(a1 == a2)),
                     "mean_abs_shift": float(np.mean(np.abs(a1 - a2))),
                     "mean_abs_diff": float(np.mean(np.abs(e1 - e2))),
                     "mean_shift": float(np.mean(e2 - e1)), "correlation": corr})
    return pl.DataFrame(rows)


def acquiescence_index(
    df: pl.DataFrame, *, by: Sequence[str] = (*RESPONDENT, "instrument"),
    value: str = "expected", scale_min: int = 1, scale_max: int | None = None,
    per_trait: bool = False,
) -> pl.DataFrame:
    """Yea-saying: mean raw answer over balanced + and - keyed items, minus the midpoint.

    Per trait the + keyed and - keyed raw means get equal weight
    (``(mean_pos + mean_neg) / 2``), so trait content cancels; traits with only one keying
    are skipped. The respondent index averages the traits. 0 = none, > 0 = agreeing. The
    midpoint is that of each item's own scale (:func:`scale_top`).

    Returns:
        Columns ``by + [acquiescence, n_traits]`` (``per_trait=True``: ``by + [trait,
        acquiescence, n_pos, n_neg]``).
    """
    require_columns(df, [*by, "trait", "keyed", value], "acquiescence_index")
    ok = answered_rows(df, value)
    dev = pl.col(value).cast(pl.Float64) - (scale_min + scale_top(ok, scale_min, scale_max)) / 2
    per = (
        ok.with_columns(dev.alias("_dev"))
        .group_by([*by, "trait"], maintain_order=True)
        .agg(
            pl.col("_dev").filter(pl.col("keyed") > 0).mean().alias("pos"),
            pl.col("_dev").filter(pl.col("keyed") < 0).mean().alias("neg"),
            (pl.col("keyed") > 0).sum().alias("n_pos"),
            (pl.col("keyed") < 0).sum().alias("n_neg"),
        )
        .drop_nulls(["pos", "neg"])
        .with_columns(((pl.col("pos") + pl.col("neg")) / 2).alias("acquiescence"))
    )
    if per_trait:
        return per.select(*by, "trait", "acquiescence", "n_pos", "n_neg").sort([*by, "trait"])
    return (
        per.sort([*by, "trait"]).group_by(list(by), maintain_order=True)
        .agg(pl.col("acquiescence").mean(), pl.len().alias("n_traits"))
        .sort(list(by))
    )


def refusal_rate(df: pl.DataFrame, *, by: Sequence[str] = ("instrument",)) -> pl.DataFrame:
    """Share of administered items that were refused (or have no answer).

    Returns:
        Columns ``by + [n, n_refused, refusal_rate]``.
    """
    require_columns(df, [*by, "refused"], "refusal_rate")
    refused = pl.col("refused").fill_null(False)
    if "expected" in df.columns:
        refused = refused | pl.col("expected").is_null()
    return (
        df.group_by(list(by))
        .agg(pl.len().alias("n"), refused.sum().alias("n_refused"))
        .with_columns((pl.col("n_refused") / pl.col("n")).alias("refusal_rate"))
        .sort(list(by))
    )
