"""Cronbach's alpha and McDonald's omega against generating reliabilities."""

import numpy as np
import polars as pl
import pytest

from agents.instruments import BIG_FIVE, load_instrument
from analysis.reliability import (
    alpha_from_matrix,
    cronbach_alpha,
    item_matrix,
    mcdonald_omega,
    omega_from_matrix,
    one_factor_fit,
    one_factor_loadings,
)
from tests.psychometrics.responders import (
    congeneric_matrix,
    draw_traits,
    matrix_to_survey,
    simulate_survey,
    theoretical_omega,
)


def spearman_brown(k: int, r: float) -> float:
    return k * r / (1 + (k - 1) * r)


@pytest.mark.parametrize(("name", "reliability"), [
    ("ipip-50", 0.3), ("ipip-50", 0.5), ("mini-ipip", 0.4), ("ipip-neo-120", 0.25)])
def test_alpha_matches_generating_reliability(name, reliability):
    inst = load_instrument(name)
    truth = draw_traits(4000, BIG_FIVE, seed=20)
    survey = simulate_survey(inst, truth, seed=21, item_reliability=reliability, clip=False)
    alphas = cronbach_alpha(survey)
    assert alphas.height == 5
    k = len(inst.items) // 5
    expected = spearman_brown(k, reliability)
    for row in alphas.iter_rows(named=True):
        assert row["n_items"] == k and row["n_respondents"] == 4000
        assert row["alpha"] == pytest.approx(expected, abs=0.03), row


def test_alpha_needs_reverse_keying():
    # the same data with the key stripped has a far lower alpha
    inst = load_instrument("ipip-50")
    survey = simulate_survey(inst, draw_traits(2000, BIG_FIVE, 22), seed=23,
                             item_reliability=0.5, clip=False)
    is_ext = pl.col("trait") == "extraversion"
    good = cronbach_alpha(survey).filter(is_ext)["alpha"][0]
    bad = cronbach_alpha(survey.with_columns(pl.lit(1).alias("keyed"))).filter(is_ext)["alpha"][0]
    assert good > 0.85 and bad < 0.2


def test_alpha_matrix_parallel_items():
    x = congeneric_matrix(20000, [0.8] * 6, seed=24, error_sd=0.6)
    r = 0.64 / (0.64 + 0.36)
    assert alpha_from_matrix(x) == pytest.approx(spearman_brown(6, r), abs=0.01)


def test_omega_equals_alpha_for_tau_equivalent_items():
    x = congeneric_matrix(20000, [0.7] * 8, seed=25, error_sd=[0.5, 0.7, 0.9, 1.1] * 2)
    alpha, omega = alpha_from_matrix(x), omega_from_matrix(x)
    assert omega == pytest.approx(alpha, abs=0.01)
    assert omega == pytest.approx(
        theoretical_omega([0.7] * 8, np.array([0.5, 0.7, 0.9, 1.1] * 2) ** 2), abs=0.01)


def test_omega_exceeds_alpha_for_congeneric_items():
    loadings = [1.2, 1.0, 0.9, 0.3, 0.2, 0.15]
    x = congeneric_matrix(20000, loadings, seed=26, error_sd=0.6)
    alpha, omega = alpha_from_matrix(x), omega_from_matrix(x)
    assert omega == pytest.approx(theoretical_omega(loadings, 0.36), abs=0.01)
    assert omega > alpha + 0.02


def test_omega_frame_api_and_listwise_deletion():
    x = congeneric_matrix(3000, [0.8] * 5, seed=27)
    survey = matrix_to_survey(x)
    survey = survey.with_columns(
        refused=(survey["agent"] == "agent0000") & (survey["item_id"] == "I00"))
    om = mcdonald_omega(survey)
    al = cronbach_alpha(survey)
    assert om["n_respondents"][0] == al["n_respondents"][0] == 2999
    assert om["omega"][0] == pytest.approx(al["alpha"][0], abs=0.01)
    matrix, items = item_matrix(survey)
    assert matrix.shape == (2999, 5) and items == [f"I{j:02d}" for j in range(5)]


def test_a_heywood_case_is_capped_and_flagged():
    # One-factor model of three items: lambda_1^2 = r12 r13 / r23 = .81 / .6 = 1.35, an
    # improper solution (negative unique variance). Loadings stay below 1 and are flagged.
    r = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, 0.6], [0.9, 0.6, 1.0]])
    fit = one_factor_fit(r)
    assert fit.heywood
    assert np.all(np.abs(fit.loadings) < 1.0)
    assert np.all(np.abs(one_factor_loadings(r)) < 1.0)
    # a proper one-factor matrix (loadings .8, .7, .6) is recovered and not flagged
    lam = np.array([0.8, 0.7, 0.6])
    proper = np.outer(lam, lam)
    np.fill_diagonal(proper, 1.0)
    ok = one_factor_fit(proper)
    assert not ok.heywood and ok.converged
    np.testing.assert_allclose(ok.loadings, lam, atol=1e-4)


def test_mcdonald_omega_reports_loadings_and_the_heywood_flag():
    rng = np.random.default_rng(0)
    lam = np.array([0.8, 0.7, 0.6, 0.5])
    f = rng.normal(size=400)
    x = np.clip(np.round(3 + np.outer(f, lam) + rng.normal(size=(400, 4)) * 0.6), 1, 5)
    rows = [{"run_id": "r", "replica": 0, "agent": f"a{i}", "instrument": "x", "trait": "t",
             "item_id": f"i{j}", "keyed": 1, "expected": float(x[i, j])}
            for i in range(400) for j in range(4)]
    out = mcdonald_omega(pl.DataFrame(rows)).row(0, named=True)
    assert out["items"] == ["i0", "i1", "i2", "i3"]
    assert len(out["loadings"]) == 4 and all(0 < v < 1 for v in out["loadings"])
    assert out["heywood"] is False
    assert out["loadings"] == sorted(out["loadings"], reverse=True)  # planted order kept
