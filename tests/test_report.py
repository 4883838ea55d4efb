"""``traitlab analyze``: tables, a self-contained HTML report, sweeps and user errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from analysis.io import load_run
from analysis.report import analyze_run, analyze_runs
from analysis.summary import choice_rates_by_round
from sim.cli.main import main
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig

ROOT = Path(__file__).resolve().parents[1]
PD = ROOT / "scenarios" / "prisoners_dilemma.yaml"
PUBLIC_GOODS = ROOT / "scenarios" / "public_goods.yaml"


def _run(out: Path, seed: int, scenario: Path = PD) -> Path:
    return run_scenario(str(scenario), RunConfig(backend="scripted", out=out, seed=seed)).path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scripted prisoner's-dilemma run."""
    return _run(tmp_path_factory.mktemp("runs"), 1)


def _section(html: str, section_id: str) -> str:
    match = re.search(rf"<section id='{section_id}'>(.*?)</section>", html, re.S)
    assert match, f"section {section_id} missing"
    return match.group(1)


def _header(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", html))


def test_analyze_writes_self_contained_html(run_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["analyze", str(run_dir), "--html", str(out)]) == 0
    assert "Cooperation rate" in capsys.readouterr().out
    html = out.read_text()
    # Nothing is fetched: no src/href/import of a URL (the inlined bundle mentions URLs in
    # strings and licence comments, which load nothing).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html
    body = html.split("</head>", 1)[1]  # the head holds the inlined Vega bundle
    assert "vegaEmbed" in body and "<svg" not in body  # Vega-Lite specs, drawn by the page
    specs = re.findall(r"<script type='application/json' class='vl-spec'[^>]*>(.*?)</script>",
                       html, re.S)
    assert len(specs) >= 4 and all(json.loads(s)["$schema"].endswith(".json") for s in specs)
    for title in ("Cooperation rate · play", "Conditional cooperation · play",
                  "Payoff by trait · play", "Choice consensus and entropy · play",
                  "Alignment vs surrogates · chat"):
        assert f"<h2>{title}</h2>" in html


def test_header_names_model_conditioning_decision_seed_commit(run_dir: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["analyze", str(run_dir), "--html", str(out)]) == 0
    head = _header(out.read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert head["model"] == manifest["model"]["model_id"] == "scripted-policies"
    assert head["dtype"] == "n/a (no model)"
    assert head["conditioning"] == "prompt"
    assert head["temperature"].startswith(f"{manifest['run_config']['temperature']} ")
    assert head["decision rule"] == "sampled from the option probabilities"
    assert head["seeds"] == "1"
    assert head["commit"] == (manifest["git_commit"] or "unknown (not a git checkout)")
    assert manifest["design"] == {"conditioning": {"population": "prompt"},
                                  "steering_strength": 4.0, "decisions": {"play": "sample"}}


def test_header_reads_argmax_and_old_manifests(tmp_path: Path) -> None:
    spec = yaml.safe_load(PD.read_text())
    for stage in spec["stages"]:
        if stage["id"] == "play":
            stage["decision"] = "argmax"
    spec["population"]["conditioning"] = "none"
    file = tmp_path / "pd_argmax.yaml"
    file.write_text(yaml.safe_dump(spec))
    path = _run(tmp_path / "runs", 3, file)
    head = dict(analyze_run(load_run(path)).header)
    assert head["decision rule"] == "argmax" and head["conditioning"] == "none"
    # A run recorded before the manifest had "design": the facts come from scenario.yaml.
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["design"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert dict(analyze_run(load_run(path)).header) == head


def test_cooperation_rate_has_n_and_interval(run_dir: Path) -> None:
    table = analyze_run(load_run(run_dir)).tables["Cooperation rate · play"]
    expected = choice_rates_by_round(load_run(run_dir).events).filter(stage="play")
    assert table["round"].to_list() == list(range(1, 11))
    assert table["cooperation"].to_list() == pytest.approx(expected["rate"].to_list())
    assert table["n"].to_list() == expected["n"].to_list() == [16] * 10
    assert (table["cluster"] == "agent").all() and (table["n_clusters"] == 16).all()
    assert ((table["ci_low"] <= table["cooperation"])
            & (table["cooperation"] <= table["ci_high"])).all()
    assert (table["ci_high"] - table["ci_low"] > 0).all()


def test_conditional_cooperation_pools_counts(run_dir: Path) -> None:
    events = load_run(run_dir).events
    table = analyze_run(load_run(run_dir)).tables["Conditional cooperation · play"]
    row = {r["measure"]: r for r in table.iter_rows(named=True)}
    # Recount P(C | partner C last round) by hand from the rows: pairs, consecutive rounds.
    play = events.filter((pl.col("stage") == "play") & (pl.col("kind") == "choice"))
    move = {(a, r): c == "cooperate" for a, r, c in play.select("agent", "round", "choice")
            .iter_rows()}
    partner = {(a, r): p[0] for a, r, p in play.select("agent", "round", "partners")
               .iter_rows()}
    after_c = [move[a, r] for (a, r) in move if (a, r - 1) in move
               and move[partner[a, r - 1], r - 1]]
    assert row["p_c_given_c"]["n"] == len(after_c)
    assert row["p_c_given_c"]["estimate"] == pytest.approx(sum(after_c) / len(after_c))
    assert row["cc"]["estimate"] == pytest.approx(
        row["p_c_given_c"]["estimate"] - row["p_c_given_d"]["estimate"])
    assert row["p_c_given_c"]["ci_low"] < row["p_c_given_c"]["estimate"] \
        < row["p_c_given_c"]["ci_high"]


def test_degenerate_shuffle_baseline_is_flagged_not_drawn(run_dir: Path) -> None:
    report = analyze_run(load_run(run_dir))
    title = "Alignment vs surrogates · chat"
    flags = report.flags[title]
    assert len(flags) == 1 and flags[0].startswith("Degenerate shuffle baseline for ")
    chart = next(f.spec for f in report.figures if f.section == title)
    drawn = {v["baseline"] for layer in chart["layer"] for v in layer.get("data", chart.get(
        "data", {})).get("values", [])} or {v["baseline"] for v in chart["data"]["values"]}
    assert drawn == {"cross"}


def test_analyze_twice_gives_identical_bytes(run_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for name in ("a.html", "b.html"):
        assert main(["analyze", str(run_dir), "--seed", "0", "--html",
                     str(tmp_path / name)]) == 0
        outs.append(capsys.readouterr().out.rsplit("wrote ", 1)[0])
    assert outs[0] == outs[1] and "Cooperation rate" in outs[0]
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_levels_and_outcomes(tmp_path: Path) -> None:
    run = load_run(_run(tmp_path, 0, PUBLIC_GOODS))
    report = analyze_run(run)
    mean = report.tables["Mean choice · contribute"]
    rows = run.events.filter((pl.col("stage") == "contribute") & (pl.col("kind") == "choice"))
    first = rows.filter(pl.col("round") == 1)["value"]
    assert mean["mean"][0] == pytest.approx(first.mean()) and mean["n"][0] == first.len()
    dist = report.tables["Choice distribution · contribute"]
    assert dist["n"].sum() == rows.height and dist["share"].sum() == pytest.approx(1.0)
    assert set(dist["value"].to_list()) <= {float(v) for v in range(0, 21, 2)}
    out = {r["outcome"]: r for r in report.tables["Outcomes · contribute"].iter_rows(
        named=True)}
    assert set(out) == {"group_total", "share"}
    # share = 1.6 * group_total / 4 row by row, so the means obey it too.
    assert out["share"]["mean"] == pytest.approx(0.4 * out["group_total"]["mean"])
    assert out["share"]["ci_low"] <= out["share"]["mean"] <= out["share"]["ci_high"]


def _cell(run: Path, agreeableness: float, seed: int) -> None:
    (run / "cell.json").write_text(json.dumps({
        "sweep": "s", "cell": f"c{agreeableness}-{seed}", "seed": seed,
        "params": {"population.personality.mean.agreeableness": agreeableness}}))


def test_sweep_cells_labelled_by_parameter_value(tmp_path: Path) -> None:
    paths = []
    for i, (value, seed) in enumerate([(0.9, 1), (0.1, 2), (0.9, 3), (0.1, 4)]):
        paths.append(_run(tmp_path / f"c{i}", seed))
        _cell(paths[-1], value, seed)
    report = analyze_runs([load_run(p) for p in paths])
    cells = report.tables["By swept parameter · play"]
    assert cells["cell"].to_list() == ["agreeableness=0.1", "agreeableness=0.9"]
    assert (cells["n_runs"] == 2).all()
    runs = report.tables["Runs"]
    assert runs["agreeableness"].to_list() == ["0.9", "0.1", "0.9", "0.1"]
    payoff = report.tables["Payoff by trait · play"]
    assert (payoff["cluster"] == "run").all() and (payoff["n_clusters"] == 4).all()


def test_sweep_of_two_runs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ids = {_run(sweep / "a", 1).name, _run(sweep / "b", 2).name}
    out = tmp_path / "sweep.html"
    assert main(["analyze", str(sweep), "--html", str(out)]) == 0
    html = out.read_text()
    assert all(i in html for i in ids) and "2 runs" in html
    assert _header(html)["seeds"] == "1, 2"
    coop = _section(html, "cooperation-rate---play")
    assert "resamples runs" in coop


def test_agent_text_is_escaped(run_dir: Path, tmp_path: Path) -> None:
    report = analyze_run(load_run(run_dir))
    report.tables["Evil"] = pl.DataFrame({"text": ["<script>alert(1)</script>"]})
    report.notes["Evil"] = "<img src=x onerror=alert(1)>"
    from analysis.report import render_html

    html = render_html(report, tmp_path / "r.html").read_text()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_not_a_run_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["analyze", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_bootstrap_is_seeded(run_dir: Path) -> None:
    a = analyze_run(load_run(run_dir), seed=0).tables["Cooperation rate · play"]
    b = analyze_run(load_run(run_dir), seed=5).tables["Cooperation rate · play"]
    assert a["cooperation"].to_list() == b["cooperation"].to_list()
    assert not np.allclose(a["ci_low"].to_numpy(), b["ci_low"].to_numpy())
