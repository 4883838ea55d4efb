from __future__ import annotations

import json

import polars as pl
import pytest

from sim.cli.main import main
from sim.cli.probe_report import probe_table, summarise
from sim.probe.probe import ProbeConfig, build_respondents, run_probe

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def test_respondents_per_method_and_baseline():
    from agents.persona import BigFive, Persona

    personas = [Persona(name="Ada", big_five=BigFive(0.9, 0.1, 0.5, 0.5, 0.5)),
                Persona(name="Bo", big_five=BigFive(0.2, 0.8, 0.5, 0.5, 0.5))]
    resps = build_respondents(personas, ("prompt", "steering", "both", "none"),
                              dict.fromkeys(TRAITS, 2.0))
    by = {r.id: r for r in resps}
    assert by["baseline"].system is None and by["baseline"].steering == ()
    assert by["prompt:000"].steering == () and "curious" in by["prompt:000"].system
    assert by["steering:000"].system == "You are Ada."
    assert dict(by["steering:000"].steering) == pytest.approx(
        {"openness": 1.6, "conscientiousness": -1.6})
    assert by["both:001"].system == by["prompt:001"].system
    assert by["both:001"].steering == by["steering:001"].steering
    assert by["none:000"].steering == () and by["none:000"].system == "You are Ada."
    assert [r.id for r in resps[1:5]] == ["prompt:000", "steering:000", "both:000", "none:000"]


def test_probe_on_tiny_model_writes_a_run_and_a_table(tmp_path, tiny_model_path, monkeypatch,
                                                      capsys):
    from sim.backends.hf.backend import HFBackend

    monkeypatch.setenv("TRAITLAB_CACHE", str(tmp_path / "cache"))
    backend = HFBackend(tiny_model_path, dtype="float32", threads=1)
    cfg = ProbeConfig(personas=6, methods=("prompt", "steering", "both"),
                      instrument="mini-ipip", out=tmp_path / "runs", chunk=7)
    res = run_probe(cfg, backend=backend, log=lambda _m: None)
    assert res.manifest["complete"] and res.manifest["respondents_done"] == 19
    saved = json.loads((res.path / "manifest.json").read_text())["config"]
    assert saved["instrument"] == "mini-ipip" and saved["chunk"] == 7
    assert (saved["batch_tokens"], saved["batch_rows"]) == (32_768, 256)
    assert ProbeConfig.model_validate(saved) == cfg  # the manifest can rebuild the study
    rows = pl.read_parquet(res.path / "survey.parquet")
    assert rows.height == 19 * 20 * 2
    assert set(rows["method"].unique()) == {"baseline", "prompt", "steering", "both"}
    assert set(rows["paraphrase"].unique()) == {0, 1, 2}
    steering = json.loads((res.path / "steering.json").read_text())
    assert set(steering["strengths"]) == set(TRAITS)
    assert steering["calibration"]["status"].keys() == set(TRAITS)
    table = summarise(res.path)
    assert table.height == 15 and set(table["method"]) == {"prompt", "steering", "both"}
    assert table["base"].is_not_null().all()
    out = capsys.readouterr().out
    assert "steering vs prompting at matched strength" in out
    assert (res.path / "summary.csv").exists()
    again = probe_table(rows, pl.read_parquet(res.path / "assigned.parquet"), res.manifest)
    assert again.select("rho", "d").equals(table.select("rho", "d"))


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "hypnosis"], "--method hypnosis"),
    (["--personas", "1"], "--personas 1"),
    (["--instrument", "bfi-44"], "allow-restricted"),
    (["--instrument", "nope"], "nope"),
    (["--layers", "x"], "--layers"),
])
def test_probe_cli_bad_input_is_one_line(args, message, capsys, tmp_path):
    code = main(["probe", "--out", str(tmp_path), "--model", str(tmp_path / "missing"),
                 *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_probe_config_is_validated_and_builds_the_backend_config():
    from pydantic import ValidationError

    from sim.errors import RunError

    cfg = ProbeConfig(personas=8, methods=["prompt"], batch_rows=12)
    assert cfg.methods == ("prompt",)
    hf = cfg.backend_config()
    assert (hf.model, hf.dtype, hf.device) == (None, "auto", "cpu")
    assert (hf.batch_tokens, hf.batch_rows, hf.prefix_cache_mib) == (32_768, 12, 512)
    with pytest.raises(ValidationError, match="batch_rows"):
        ProbeConfig(batch_rows=0)
    with pytest.raises(ValidationError, match="batch_size"):
        ProbeConfig(batch_size=8)  # unknown keys are refused, not ignored
    with pytest.raises(ValidationError, match="dtype"):
        ProbeConfig(dtype="float64")
    with pytest.raises(RunError, match="--method hypnosis"):
        ProbeConfig(methods=("hypnosis",))
    with pytest.raises(RunError, match="--strength -1"):
        ProbeConfig(strength=-1.0)
    with pytest.raises(ValidationError):
        cfg.personas = 3  # frozen
