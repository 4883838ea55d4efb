"""Trait validity: behaviour measures, cluster-robust r, and planted effects on scripted runs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from analysis.behaviour import acceptance_threshold, behaviour_measures
from analysis.io import load_run
from analysis.synthetic import events_frame, planted_surveys
from analysis.validity import correlation_interval, references, validity
from sim import RunConfig, run_scenario

SCENARIO = """\
name: planted
description: A planted trait-to-behaviour check.
rounds: {rounds}
params: {{endowment: 10, multiplier: 1.5}}
population:
  size: {size}
  personality: {{model: big_five, sample: uniform}}
  cohorts:
    - name: linked
      fraction: 1.0
      policy: {{name: trait_linked, trait: agreeableness, option: cooperate, slope: {slope}}}
stages:
  - id: chat
    kind: dialogue
    turns: 2
    groups: {{by: random_pairs}}
    prompt: Round {{round}}. Chat with {{partner.name}}.
  - id: play
    kind: choice
    groups: {{by: random_pairs}}
    prompt: Round {{round}}. Cooperate or defect?
    options: [cooperate, defect]
    payoff: {{matrix: [[3, 0], [5, 1]]}}
  - id: give
    kind: choice
    groups: {{by: groups_of, size: 2, redraw: never}}
    prompt: Round {{round}}. How much do you give?
    levels: {{min: 0, max: 10, step: 2}}
    payoff: {{formula: "endowment - value + multiplier * sum_values / n"}}
flow:
  - {{from: start, to: chat}}
  - {{from: chat, to: play}}
  - {{from: play, to: give}}
  - {{from: give, to: end}}
"""


def _scripted(tmp_path: Path, *, rounds: int, size: int, slope: float, replicas: int):
    path = tmp_path / "planted.yaml"
    path.write_text(SCENARIO.format(rounds=rounds, size=size, slope=slope))
    outcome = run_scenario(path, RunConfig(backend="scripted", replicas=replicas,
                                           out=tmp_path / "runs"))
    return load_run(outcome.path)


def test_cluster_interval_is_cr1_with_g_minus_1_df():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(6), 5)
    x = rng.normal(size=30)
    y = 0.5 * x + rng.normal(size=30)
    got = correlation_interval(x, y, g)
    # CR1 by hand: sandwich over cluster score sums, G/(G-1) (n-1)/(n-k), t on G-1 df.
    xz, yz = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    design = np.c_[np.ones(30), xz]
    beta = np.linalg.lstsq(design, yz, rcond=None)[0]
    e = yz - design @ beta
    bread = np.linalg.inv(design.T @ design)
    meat = sum(np.outer(design[g == c].T @ e[g == c], design[g == c].T @ e[g == c])
               for c in range(6))
    var = bread @ meat @ bread * (6 / 5) * (29 / 28)
    half = stats.t.ppf(0.975, 5) * math.sqrt(var[1, 1])
    assert got["r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((beta[1] - half, beta[1] + half))
    assert got["interval"] == "cluster-robust, 6 runs"
    one = correlation_interval(x, y, np.zeros(30))
    assert one["interval"].startswith("HC1, 1 run")
    flat = correlation_interval(x, np.ones(30), g)
    assert math.isnan(flat["r"])


def test_cluster_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    x, y, g = rng.normal(size=40), rng.normal(size=40), np.repeat(np.arange(8), 5)
    a = correlation_interval(x, y, g, method="bootstrap", rng=np.random.default_rng(5))
    b = correlation_interval(x, y, g, method="bootstrap", rng=np.random.default_rng(5))
    assert a == b and a["ci_low"] < a["r"] < a["ci_high"]


def test_acceptance_threshold_is_the_best_step():
    assert acceptance_threshold(np.array([2, 4, 6, 8]), np.array([0, 0, 1, 1])) == 6.0
    assert acceptance_threshold(np.array([3, 5]), np.array([1, 1])) == 3.0  # accepts all
    assert acceptance_threshold(np.array([3, 5]), np.array([0, 0])) == 6.0  # rejects all
    # 2 acc, 4 rej, 6 acc: steps at 2 and at 6 both misclassify one answer -> mean 4
    assert acceptance_threshold(np.array([2, 4, 6]), np.array([1, 0, 1])) == 4.0


def test_behaviour_measures_by_hand():
    rows = [
        {"run_id": "r", "round": 1, "stage": "chat", "kind": "message", "group": "g0",
         "agent": "a", "text": "Hello there,  how are you?"},
        {"run_id": "r", "round": 1, "stage": "chat", "kind": "message", "group": "g0",
         "agent": "a", "text": "Fine."},
        {"run_id": "r", "round": 1, "stage": "punish", "kind": "sanction", "group": "g0",
         "agent": "a", "choice": "Bo", "options": ["nobody", "Bo"]},
        {"run_id": "r", "round": 2, "stage": "punish", "kind": "sanction", "group": "g0",
         "agent": "a", "choice": "nobody", "options": ["nobody", "Bo"]},
    ]
    for rnd, (offer, answer) in enumerate([(2, 0), (6, 1), (8, 1)], start=1):
        rows += [{"run_id": "r", "round": rnd, "stage": "offer", "kind": "choice",
                  "group": "g0", "agent": "p", "partners": ["q"], "choice": str(offer),
                  "choice_index": offer, "options": [str(i) for i in range(11)]},
                 {"run_id": "r", "round": rnd, "stage": "respond", "kind": "choice",
                  "group": "g0", "agent": "q", "partners": ["p"],
                  "choice": ["reject", "accept"][answer], "choice_index": answer,
                  "options": ["reject", "accept"]}]
    ev = events_frame(rows).with_columns(pl.col("choice_index").cast(pl.Float64).alias("value"))
    got = {(r["agent"], r["measure"]): (r["kind"], r["value"], r["n"])
           for r in behaviour_measures(ev).iter_rows(named=True)}
    assert got[("a", "chat: words per message")] == ("words", 3.0, 2)  # (5 + 1) / 2
    assert got[("a", "chat: questions per message")] == ("questions", 0.5, 2)
    assert got[("a", "punish: sanctions given")] == ("sanctions", 0.5, 2)
    assert got[("p", "offer: mean value")] == ("amount", pytest.approx(16 / 3), 3)
    assert got[("q", "respond: P(reject)")] == ("choice_rate", pytest.approx(1 / 3), 3)
    assert got[("q", "respond: acceptance threshold")] == ("threshold", 6.0, 3)
    stages = {"offer": {"payoff": {"formula": "pie - value + sum_values"}}}
    kinds = behaviour_measures(ev, stages).filter(pl.col("agent") == "p")["kind"].to_list()
    assert kinds == ["contribution"]


def test_planted_effect_is_recovered_within_its_interval(tmp_path):
    run = _scripted(tmp_path, rounds=6, size=8, slope=0.8, replicas=20)
    run = dataclasses.replace(run, surveys=planted_surveys(
        run.agents, np.random.default_rng(0), loading=0.5, noise_sd=0.3))
    links = validity([run]).links
    # P(cooperate) = 0.5 + 0.8 (a - 0.5), a ~ U(0, 1), 6 rounds per agent:
    # r = 0.8 sd(a) / sqrt(0.64 var(a) + E[q (1 - q)] / 6), E[q (1 - q)] = 0.25 - 0.64 / 12.
    var_q = 0.64 / 12
    planted = math.sqrt(var_q) / math.sqrt(var_q + (0.25 - var_q) / 6)
    # self-report: latent 3 + 2 (a - 0.5), noise 0.3 per answer, mean of 4 items.
    var_s = 4 / 12
    planted_self = math.sqrt(var_s) / math.sqrt(var_s + 0.09 / 4)

    def link(trait: str, name: str, measure: str | None) -> dict:
        rows = links.filter((pl.col("trait") == trait) & (pl.col("link") == name)
                            & (pl.col("measure").eq_missing(measure)))
        assert rows.height == 1
        return rows.row(0, named=True)

    coop = link("agreeableness", "assigned -> behaviour", "play: P(cooperate)")
    assert coop["n"] == 160 and coop["n_clusters"] == 20 and coop["flagged"]
    assert coop["ci_low"] <= planted <= coop["ci_high"]
    assert coop["human"].startswith("0.13 to 0.19 (Thielmann 2020, unverified")
    selfrep = link("agreeableness", "assigned -> self-report", None)
    assert selfrep["ci_low"] <= planted_self <= selfrep["ci_high"]
    give = link("agreeableness", "assigned -> behaviour", "give: mean value")
    assert give["flagged"] and give["kind"] == "contribution"
    assert not any(m and "threshold" in m for m in links["measure"].to_list())
    words = link("agreeableness", "assigned -> behaviour", "chat: words per message")
    assert words["ci_low"] <= 0 <= words["ci_high"]  # no plant on talk


def test_null_plant_flags_about_five_percent(tmp_path):
    """100 scripted runs of 6 agents with no plant (slope 0), analysed as 10 sets of 10 runs.

    Each set gives 5 traits x 4 behaviour measures = 20 assigned -> behaviour links: 200 in
    all, 10 flagged expected at a 95% level. Allowed: at most the 99th percentile of
    Binomial(200, 0.05), 18 (links of one set share their behaviour measures, so counts
    vary a little more than binomial).
    """
    run = _scripted(tmp_path, rounds=4, size=6, slope=0.0, replicas=100)
    flagged = total = 0
    for k in range(10):
        part = dataclasses.replace(
            run, events=run.events.filter(pl.col("replica") // 10 == k),
            agents=run.agents.filter(pl.col("replica") // 10 == k))
        links = validity([part]).links.filter(pl.col("link") == "assigned -> behaviour")
        assert links["n_clusters"].unique().to_list() == [10]
        flagged += int(links["flagged"].sum())
        total += links.height
    limit = int(stats.binom.ppf(0.99, 200, 0.05))
    assert total == 200 and limit == 18
    print(f"null: {flagged} of {total} links flagged")
    assert flagged <= limit, f"{flagged} of {total} null links flagged"


def test_references_name_a_source_and_a_range():
    for ref in references():
        assert ref["source"] and ref["where"] and ref["r_low"] <= ref["r_high"]
        assert isinstance(ref["verified"], bool)


def test_cli_prints_the_table_and_json_and_one_line_errors(tmp_path, capsys):
    import json

    from sim.cli.main import main

    run = _scripted(tmp_path, rounds=4, size=8, slope=0.8, replicas=4)
    assert main(["validity", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "Trait validity" in out and "Multitrait-multimethod" in out
    assert "note: 4 runs" in out and "agreeableness" in out
    assert main(["validity", str(run.path.parent), "--json"]) == 0  # a folder of runs
    data = json.loads(capsys.readouterr().out)
    coop = [r for r in data["links"] if r["trait"] == "agreeableness"
            and r["measure"] == "play: P(cooperate)"]
    # four runs: t on 3 df, so the interval is wide even around a planted r near 0.7
    assert coop[0]["r"] > 0.3 and coop[0]["n_clusters"] == 4 and coop[0]["n"] == 32
    assert main(["validity", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing" in err[0] and "Fix:" in err[0]
