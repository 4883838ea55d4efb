"""``traitlab probe``: does conditioning move what a questionnaire measures?

A conditioning-validation study: sample Big Five personas (seeded, uniform on [0, 1]^5),
condition each with every requested method, administer an instrument with controls (both
option orders on every item, instruction paraphrases across personas), add the persona-free
baseline, and report per method and trait the manipulation check (Spearman rho between
assigned and measured trait, Cohen's d between high and low personas), Cronbach's alpha,
option-order symmetry and the baseline's scores. Steering strength is calibrated per trait
against prompting on held-apart items first (:mod:`sim.probe.calibration`), so the ``steering``
and ``prompt`` rows compare the two methods at matched strength.

Methods:
- ``prompt``: the persona prompt (graded trait markers, paraphrase template ``i % 3``).
- ``steering``: a name-only system prompt plus the persona's steering vector.
- ``both``: the persona prompt plus the steering vector.
- ``none``: the name-only prompt (a within-persona control).

Every survey request of a persona shares its prompt prefix (persona, instruction, scale), and
the whole study is sent to the backend in a few large score calls, so the shared prefix is
prefilled once per persona, order and method.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.instruments import load_instrument
from agents.persona import TRAITS, Persona, default_names, sample_big_five
from agents.prompting import PERSONA_TEMPLATES, persona_prompt
from agents.survey import (
    INSTRUCTIONS,
    Respondent,
    SurveyDesign,
    rows_from_scores,
    survey_requests,
)
from sim.backends.hf.config import HFConfig
from sim.backends.protocol import capabilities_of
from sim.errors import RunError

__all__ = ["METHODS", "ProbeConfig", "ProbeResult", "build_respondents", "run_probe"]

METHODS: tuple[str, ...] = ("none", "prompt", "steering", "both")


_HF = HFConfig.model_fields


class ProbeConfig(BaseModel):
    """Settings of one probe study; ``traitlab probe`` reads its flag defaults from here.

    The model settings default to the run's (:class:`~sim.backends.hf.config.HFConfig`); the
    batch budgets are larger than a run's because the whole study is a few large score calls.

    Raises:
        RunError: an unknown method, a persona count outside 2..10000, a negative strength.
        pydantic.ValidationError: a value of the wrong type or out of range.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    personas: int = 64
    methods: tuple[str, ...] = ("prompt", "steering", "both")
    instrument: str = "ipip-50"
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    out: Path = Path("runs")
    model: str | None = _HF["model"].default
    dtype: Literal["auto", "bfloat16", "float32"] = _HF["dtype"].default
    device: Literal["cpu", "cuda"] = _HF["device"].default
    batch_tokens: Annotated[int, Field(ge=1)] = 32_768
    batch_rows: Annotated[int, Field(ge=1)] = 256
    calibrate: bool = True
    strength: float | None = None
    layers: tuple[int, ...] | None = None
    allow_restricted: bool = False
    chunk: Annotated[int, Field(ge=1)] = 32

    @model_validator(mode="after")
    def _check(self) -> ProbeConfig:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise RunError(f"--method {','.join(self.methods)}: unknown {bad}; allowed "
                           f"{', '.join(METHODS)} (comma separated). Fix: e.g. "
                           "--method prompt,steering,both.")
        if not 2 <= self.personas <= 10_000:
            raise RunError(f"--personas {self.personas}: allowed 2..10000. Fix: e.g. 64.")
        if self.strength is not None and self.strength < 0:
            raise RunError(f"--strength {self.strength}: must be >= 0.")
        return self

    def backend_config(self) -> HFConfig:
        """The settings of the backend the probe loads when none is given."""
        return HFConfig(model=self.model, dtype=self.dtype, device=self.device,
                        batch_tokens=self.batch_tokens, batch_rows=self.batch_rows)


@dataclass
class ProbeResult:
    """Where the study was written and what it found."""

    path: Path
    rows: list[dict[str, Any]]
    assigned: list[dict[str, Any]]
    manifest: dict[str, Any] = field(default_factory=dict)


def build_respondents(personas: Sequence[Persona], methods: Sequence[str],
                      strengths: dict[str, float]) -> list[Respondent]:
    """One respondent per (method, persona), plus the persona-free baseline."""
    from agents.steering import big_five_coefficients

    out = [Respondent("baseline", None, meta={"method": "baseline", "persona": -1,
                                              "template": -1}, paraphrase=0)]
    for i, p in enumerate(personas):  # methods interleaved: any prefix of the run is balanced
        for method in methods:
            template = i % len(PERSONA_TEMPLATES)
            prompt = persona_prompt(p, template=template)
            neutral = f"You are {p.name}."
            steer = big_five_coefficients(p.big_five, strengths) \
                if method in ("steering", "both") else ()
            system = prompt if method in ("prompt", "both") else neutral
            out.append(Respondent(f"{method}:{i:03d}", system, steer,
                                  meta={"method": method, "persona": i, "template": template},
                                  paraphrase=i % len(INSTRUCTIONS)))
    return out


def run_probe(cfg: ProbeConfig, *, backend: Any = None,
              log: Callable[[str], None] = print, command: Sequence[str] = ()) -> ProbeResult:
    """Run the study and write its directory (``<out>/probe/<time>-<id>/``).

    Args:
        cfg: settings.
        backend: an already loaded :class:`HFBackend` (default: one from
            :meth:`ProbeConfig.backend_config`).
        log: progress line sink.
        command: the command line, for the manifest.
    """
    started = time.perf_counter()
    inst = load_instrument(cfg.instrument, allow_restricted=cfg.allow_restricted)
    if inst.kind != "likert" or not set(inst.traits) <= set(TRAITS):
        raise RunError(f"--instrument {cfg.instrument}: probe needs a Big Five Likert "
                       "instrument (ipip-50, mini-ipip, ipip-neo-120, bfi-44).")
    rng = np.random.default_rng(cfg.seed)
    names = default_names(cfg.personas)
    personas = [Persona(name=n, big_five=b) for n, b in
                zip(names, sample_big_five(rng, cfg.personas), strict=True)]
    timings: dict[str, float] = {}
    if backend is None:
        from sim.backends.hf.backend import HFBackend

        log("loading model")
        backend = HFBackend(cfg.backend_config())
    timings["load_s"] = time.perf_counter() - started
    conditioning = _conditioning(cfg, backend, inst, timings, log)
    respondents = build_respondents(personas, cfg.methods, conditioning["strengths"])
    run_id, path = _new_run_dir(cfg)
    assigned = [{"run_id": run_id, "replica": 0, "agent": f"{m}:{i:03d}", "method": m,
                 "persona": i, "trait": t, "assigned": float(getattr(p.big_five, t))}
                for m in cfg.methods for i, p in enumerate(personas) for t in TRAITS]
    design = SurveyDesign()
    manifest = _manifest(cfg, run_id, command, inst, backend.info, conditioning, design)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    total = len(respondents)
    for start in range(0, total, cfg.chunk):
        pairs = survey_requests(inst, respondents[start:start + cfg.chunk], design)
        results = backend.score([req for _p, req in pairs])
        rows += rows_from_scores(inst, pairs, results, run_id=run_id)
        done = min(start + cfg.chunk, total)
        spent = time.perf_counter() - t0
        log(f"surveyed {done}/{total} respondents ({len(rows)} items, {spent:.0f} s, "
            f"eta {spent / done * (total - done):.0f} s)")
        timings["survey_s"] = spent
        timings["total_s"] = time.perf_counter() - started
        manifest.update(timings_s={k: round(v, 2) for k, v in timings.items()},
                        backend_stats=dict(backend.stats) if capabilities_of(backend).stats else {},
                        respondents_done=done, complete=done == total)
        _write(path, rows, assigned, personas, manifest)  # partial results survive a kill
    return ProbeResult(path, rows, assigned, manifest)


def _conditioning(cfg: ProbeConfig, backend: Any, inst: Any, timings: dict[str, float],
                  log: Callable[[str], None]) -> dict[str, Any]:
    """Steering directions and strengths, when a method steers (else empty strengths).

    Returns the manifest's ``steering``, ``strengths`` and ``calibration`` entries.
    """
    out: dict[str, Any] = {"steering": None, "strengths": {}, "calibration": None}
    if not any(m in ("steering", "both") for m in cfg.methods):
        return out
    from sim.run.conditioning import prepare_steering

    t0 = time.perf_counter()
    dirs = prepare_steering(backend, layers=cfg.layers)
    out["steering"] = dirs.manifest()
    timings["directions_s"] = time.perf_counter() - t0
    log(f"steering directions at layers {list(dirs.layers)} "
        f"({'cached' if dirs.cached else 'computed'}, {timings['directions_s']:.0f} s)")
    if cfg.strength is not None:
        out["strengths"] = dict.fromkeys(TRAITS, float(cfg.strength))
    elif cfg.calibrate:
        from sim.probe.calibration import calibrate

        t0 = time.perf_counter()
        cal = calibrate(backend, inst)
        timings["calibration_s"] = time.perf_counter() - t0
        out["calibration"], out["strengths"] = cal.manifest(), cal.strengths
        log(f"calibrated strengths {cal.strengths} ({timings['calibration_s']:.0f} s)")
    else:
        out["strengths"] = dict.fromkeys(TRAITS, 4.0)
    return out


def _new_run_dir(cfg: ProbeConfig) -> tuple[str, Path]:
    """A fresh ``<out>/probe/<time>-<id>`` directory and its run id."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(json.dumps([stamp, cfg.seed, cfg.personas, list(cfg.methods)])
                            .encode()).hexdigest()[:6]
    run_id = f"{stamp}-{digest}"
    path = Path(cfg.out) / "probe" / run_id
    path.mkdir(parents=True, exist_ok=False)
    return run_id, path


def _manifest(cfg: ProbeConfig, run_id: str, command: Sequence[str], inst: Any, info: Any,
              conditioning: dict[str, Any], design: SurveyDesign) -> dict[str, Any]:
    """The study's manifest before the first survey chunk (completed as chunks finish)."""
    return {
        "kind": "probe", "run_id": run_id, "command": list(command), "complete": False,
        "config": cfg.model_dump(mode="json"),
        "instrument": {"name": inst.name, "licence": inst.licence, "items": len(inst.items)},
        "model": {"backend": info.backend, "model_id": info.model_id,
                  "weights_hash": info.weights_hash, "dtype": info.dtype,
                  "device": info.device},
        "design": {"orders": list(design.orders), "paraphrases": design.paraphrases,
                   "paraphrase_by": design.paraphrase_by, "repeats": design.repeats,
                   "scoring": "option log-likelihoods of the labels 1..5"},
        **conditioning,
    }


def _write(path: Path, rows: list[dict[str, Any]], assigned: list[dict[str, Any]],
           personas: Sequence[Persona], manifest: dict[str, Any]) -> Path:
    import polars as pl

    pl.DataFrame(rows, infer_schema_length=None).write_parquet(path / "survey.parquet")
    pl.DataFrame(assigned).write_parquet(path / "assigned.parquet")
    (path / "personas.json").write_text(json.dumps(
        [{"index": i, "name": p.name, **p.big_five.as_dict()} for i, p in enumerate(personas)],
        indent=1))
    if manifest.get("steering"):
        (path / "steering.json").write_text(json.dumps(
            {"steering": manifest["steering"], "strengths": manifest["strengths"],
             "calibration": manifest["calibration"]}, indent=2))
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return path


