"""Throughput of the engine against the model's own batched limit, measured in one run.

Usage::

    .venv/bin/python bench/throughput.py [--quick] [--dtype auto] [--device cpu]

Every figure comes from the embedded model (SmolLM2) and the same prompts:

* ``raw_tokens_per_s``: ``model.generate`` on every wave's prompts at the engine's batch size,
  greedy, every row forced to the full token budget (the model's own batched limit);
* ``engine_tokens_per_s``: new tokens per second of a 32-agent dialogue stage run through the
  engine (requests built by agents, waves batched by the backend, rows leaving when they stop);
  ``engine_vs_raw`` is their ratio;
* ``sequential_tokens_per_s``: requests drawn evenly from every wave, sent one at a time as
  peers issue them: stock transformers (``model.generate``, SDPA attention, plain linear
  layers, its own cache); ``engine_vs_sequential`` (the issue's target, >= 8 on a CPU);
* ``strict_sequential_tokens_per_s``: the same requests one at a time through this backend
  (its kernels and packed weights, nothing kept between requests), a higher bar that
  isolates what batching alone gains; ``engine_vs_strict_sequential`` (no target: on this
  CPU the engine is prefill-bound, and prefill gains nothing from batching);
* ``score_decisions_per_s``: the wave of a 256-agent choice stage (64 with ``--quick``)
  decided by option scoring, against ``generate_decisions_per_s``: the same decisions
  generated (greedy, up to the run's default 40 new tokens, rows leaving at their end of
  turn) and parsed (``score_vs_generate``); each is timed twice, alternately, and the better
  time of each counts (on a CPU both paths are dominated by the same prefill, so one run's
  noise would otherwise decide the ratio). ``score_vs_generate_6`` times generation once more
  with only 6 new tokens: the cheapest possible generation, though too short for the model to
  name an option (its parse rate is printed beside it);
* ``bucketing_mixed_vs_sorted``: a wave mixing ~150- and ~1,500-token prompts against the same
  prompts sent as two separate waves (length bucketing keeps it near 1);
* ``prefix_prefill_saved``: share of the engine's prompt tokens (dialogue and choice stages,
  not the baselines) served from a shared-prefix cache;
* ``peak_rss_mib``: peak resident memory of this process; on a GPU also ``peak_gpu_mib``, the
  most GPU memory torch held at once.

Without ``--quick`` the dialogue measurements (engine, raw, both sequential) run two rounds,
one after the other, and each figure is its better round: this machine's speed wanders by
about 15% from minute to minute, and a slow minute should not decide a ratio.

The last line printed is the JSON of all figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from sim.backends.hf.attention import attention_backends  # noqa: E402
from sim.backends.hf.backend import HFBackend  # noqa: E402
from sim.backends.hf.packed_linear import unpacked  # noqa: E402
from sim.engine.loop import Engine  # noqa: E402
from sim.executors.local import LocalExecutor  # noqa: E402
from sim.requests import (  # noqa: E402
    GenerateRequest,
    GenerateResult,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
)
from sim.scenario.spec import RunConfig, ScenarioSpec  # noqa: E402

ANSWER_TOKENS = RunConfig().max_new_tokens
"""Budget of a generated decision: the run's default for generated text (room for an answer)."""

SHORT_ANSWER_TOKENS = 6
"""The shortest budget also timed: cheaper, but too short for an answer (parse rate ~0)."""

DESCRIPTION = (
    "You live in a small village and meet other villagers in the square. Each of you has a "
    "personality of your own; speak as yourself, briefly and naturally."
)


class Recording:
    """A backend proxy that keeps every wave it is sent (and nothing else changes)."""

    def __init__(self, backend: HFBackend) -> None:
        self.backend = backend
        self.generate_waves: list[list[GenerateRequest]] = []
        self.score_waves: list[list[ScoreRequest]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.generate_waves.append(list(requests))
        return self.backend.generate(requests)

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        self.score_waves.append(list(requests))
        return self.backend.score(requests)


def dialogue_spec(agents: int, turns: int, max_new: int) -> ScenarioSpec:
    """One dialogue stage: agents in random pairs, ``turns`` messages per pair."""
    return ScenarioSpec.model_validate({
        "name": "bench-dialogue", "description": DESCRIPTION, "rounds": 1,
        "population": {"size": agents, "personality": {"model": "big_five", "sample": "uniform"}},
        "stages": [{"id": "chat", "kind": "dialogue", "turns": turns, "max_new_tokens": max_new,
                    "groups": {"by": "random_pairs"},
                    "prompt": "You meet {partner.name} in the village square. Say hello and "
                              "tell them about your day."}],
        "flow": [{"from": "start", "to": "chat"}, {"from": "chat", "to": "end"}],
    })


def choice_spec(agents: int) -> ScenarioSpec:
    """One prisoner's-dilemma choice stage over ``agents`` agents in random pairs."""
    return ScenarioSpec.model_validate({
        "name": "bench-choice",
        "description": "You play a game. Both cooperate: 3 points each. Both defect: 1 each. "
                       "A defector against a cooperator gets 5, the cooperator 0.",
        "rounds": 1,
        "population": {"size": agents, "personality": {"model": "big_five", "sample": "uniform"}},
        "stages": [{"id": "play", "kind": "choice", "groups": {"by": "random_pairs"},
                    "prompt": "You are paired with {partner.name}. Do you cooperate or defect?",
                    "options": ["cooperate", "defect"],
                    "payoff": {"matrix": [[3, 0], [5, 1]]}}],
        "flow": [{"from": "start", "to": "play"}, {"from": "play", "to": "end"}],
    })


def run_engine(spec: ScenarioSpec, backend: Recording, replicas: int,
               max_new: int) -> tuple[float, LocalExecutor]:
    """Run a one-step scenario through the engine; return its wall time and executor."""
    config = RunConfig(seed=7, replicas=replicas, max_new_tokens=max_new, temperature=0.7)
    executor = LocalExecutor(backend)  # type: ignore[arg-type]
    engine = Engine(spec, config, executor)
    started = time.perf_counter()
    engine.run()
    return time.perf_counter() - started, executor


def raw_generate(backend: HFBackend, waves: Sequence[Sequence[GenerateRequest]],
                 max_new: int) -> float:
    """Tokens/s of ``model.generate`` on each wave's prompts, every row forced to ``max_new``."""
    import torch

    tokens, seconds = 0, 0.0
    for wave in waves:
        ids = [backend.render(r.messages) for r in wave]
        width = max(len(i) for i in ids)
        pad = backend.tokenizer.pad_token_id or 0
        device = backend.model.device
        input_ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids], device=device)
        mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=device)
        with torch.inference_mode(), attention_backends(backend.model.device):
            started = time.perf_counter()
            backend.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False,
                                   max_new_tokens=max_new, min_new_tokens=max_new,
                                   pad_token_id=pad)
            seconds += time.perf_counter() - started
        tokens += len(wave) * max_new
    return tokens / seconds


def spread(waves: Sequence[Sequence[GenerateRequest]], n: int) -> list[GenerateRequest]:
    """``n`` requests drawn evenly from all waves (early short prompts and late long ones)."""
    flat = [r for wave in waves for r in wave]
    return [flat[(k * len(flat)) // n] for k in range(min(n, len(flat)))]


def strict_sequential(backend: HFBackend, requests: Sequence[GenerateRequest]) -> float:
    """Tokens/s of ``requests`` one at a time through this backend, nothing kept between them."""
    tokens, started = 0, time.perf_counter()
    for request in requests:
        backend.forget_prefixes()
        tokens += backend.generate([request])[0].num_new_tokens
    return tokens / (time.perf_counter() - started)


def stock_sequential(backend: HFBackend, requests: Sequence[GenerateRequest]) -> float:
    """Tokens/s of ``requests`` one at a time through stock transformers (SDPA, plain layers)."""
    import torch

    model = backend.model
    kernel = model.config._attn_implementation
    pad = backend.tokenizer.pad_token_id or 0
    model.set_attn_implementation("sdpa")
    torch.manual_seed(0)  # the sampled lengths, and so the figure, repeat run to run
    tokens, started = 0, time.perf_counter()
    try:
        with unpacked(model):
            for request in requests:
                ids = torch.tensor([backend.render(request.messages)], device=model.device)
                with torch.inference_mode(), attention_backends(model.device):
                    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                         do_sample=True,
                                         temperature=request.sampling.temperature,
                                         max_new_tokens=request.sampling.max_new_tokens,
                                         pad_token_id=pad)
                tokens += out.shape[1] - ids.shape[1]
    finally:
        model.set_attn_implementation(kernel)
    return tokens / (time.perf_counter() - started)


def score_direct(backend: HFBackend, wave: Sequence[ScoreRequest]) -> float:
    """Decisions/s of scoring ``wave`` (nothing kept from earlier calls)."""
    backend.forget_prefixes()
    started = time.perf_counter()
    backend.score(wave)
    return len(wave) / (time.perf_counter() - started)


def generate_and_parse(backend: HFBackend, wave: Sequence[ScoreRequest],
                       max_new: int) -> tuple[float, float]:
    """Decisions/s (and parse rate) when the same choices are generated (greedy) and parsed."""
    requests = [GenerateRequest(messages=r.messages,
                                sampling=SamplingParams(max_new_tokens=max_new, temperature=0.0))
                for r in wave]
    backend.forget_prefixes()  # the scored run kept these prompts; generating starts cold too
    started = time.perf_counter()
    results = backend.generate(requests)
    parsed = sum(any(o.lower() in res.text.lower() for o in req.options)
                 for req, res in zip(wave, results, strict=True))
    seconds = time.perf_counter() - started
    return len(wave) / seconds, parsed / len(wave)


def bucketing(backend: HFBackend, short: int, long: int, new: int) -> float:
    """Wall of one wave mixing short and long prompts over the same prompts as two waves."""
    from sim.requests import Message

    filler = "The market was busy today and the weather was mild. "
    def request(n_sentences: int, k: int) -> GenerateRequest:
        text = f"Note {k}. " + filler * n_sentences + "Summarise the notes in one sentence."
        return GenerateRequest(messages=(Message("user", text),),
                               sampling=SamplingParams(max_new_tokens=new, temperature=0.0))
    shorts = [request(10, k) for k in range(short)]       # ~150 tokens
    longs = [request(130, k) for k in range(long)]        # ~1,500 tokens
    backend.generate([shorts[0], longs[0]])  # warm-up (on a GPU, first shapes cost extra)
    backend.forget_prefixes()  # each measurement starts with nothing kept from the last
    started = time.perf_counter()
    backend.generate(shorts + longs)
    mixed = time.perf_counter() - started
    backend.forget_prefixes()
    started = time.perf_counter()
    backend.generate(shorts)
    backend.forget_prefixes()
    backend.generate(longs)
    separate = time.perf_counter() - started
    return mixed / separate


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads (< 3 minutes)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="a local model folder (default: SmolLM2)")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    turns, max_new, seq_n = (2, 32, 8) if args.quick else (4, 40, 32)
    rounds = 1 if args.quick else 2  # full: every dialogue figure is the better of two rounds
    choosers = 64 if args.quick else 256

    started_all = time.perf_counter()
    # a GPU takes whole waves at once (its passes cost launch time, not compute)
    tokens, rows = (16_384, 64) if args.device == "cpu" else (262_144, 256)
    hf = HFBackend(args.model, dtype=args.dtype, device=args.device, batch_tokens=tokens,
                   batch_rows=rows)
    backend = Recording(hf)
    console.print(f"model {hf.info.model_id} dtype={hf.info.dtype} device={hf.info.device}")

    console.print("dialogue: 32 agents in pairs x 2 lock-step replicas (32-row waves) ...")
    run_engine(dialogue_spec(8, 1, 4), backend, 1, 4)  # warm-up (first-call allocations)
    engine_tps = raw_tps = strict_tps = stock_tps = 0.0
    for round_ in range(rounds):
        backend.generate_waves.clear()
        before = dict(hf.stats)
        seconds, executor = run_engine(dialogue_spec(32, turns, max_new), backend, 2, max_new)
        engine_tps = max(engine_tps, executor.stats.new_tokens / seconds)
        prefix = {k: hf.stats[k] - before[k] for k in ("prompt_tokens", "cached_tokens")}
        waves = list(backend.generate_waves)
        console.print(f"  [{round_ + 1}/{rounds}] engine: {executor.stats.new_tokens} new tokens "
                      f"in {seconds:.1f} s; {len(waves)} waves of {len(waves[0])} rows")
        raw_tps = max(raw_tps, raw_generate(hf, waves, max_new))
        strict_tps = max(strict_tps, strict_sequential(hf, spread(waves, seq_n)))
        stock_tps = max(stock_tps, stock_sequential(hf, spread(waves, seq_n)))
        console.print(f"  raw model.generate {raw_tps:.1f}; one at a time ({seq_n} requests from "
                      f"all waves): stock {stock_tps:.1f}, strict {strict_tps:.1f} tokens/s "
                      "(best so far)")
    wave = waves[0]

    console.print(f"choice: {choosers} agents, scored vs generated-and-parsed, best of 2 ...")
    before = dict(hf.stats)
    run_engine(choice_spec(choosers), backend, 1, max_new)
    for key in prefix:
        prefix[key] += hf.stats[key] - before[key]
    prefix_saved = prefix["cached_tokens"] / max(prefix["prompt_tokens"], 1)
    choice_wave = backend.score_waves[-1]
    score_dps, gen_dps, parse_rate = 0.0, 0.0, 0.0
    for _ in range(2):
        score_dps = max(score_dps, score_direct(hf, choice_wave))
        gen_rate, parse_rate = generate_and_parse(hf, choice_wave, ANSWER_TOKENS)
        gen_dps = max(gen_dps, gen_rate)
    short_dps, short_parse = generate_and_parse(hf, choice_wave, SHORT_ANSWER_TOKENS)

    console.print("bucketing: a wave of ~150- and ~1,500-token prompts ...")
    mixed_ratio = bucketing(hf, 12 if args.quick else 24, 2 if args.quick else 4, 8)

    figures: dict[str, Any] = {
        "quick": args.quick, "dtype": hf.info.dtype, "device": hf.info.device,
        "wave_rows": len(wave),
        "raw_tokens_per_s": round(raw_tps, 1),
        "engine_tokens_per_s": round(engine_tps, 1),
        "engine_vs_raw": round(engine_tps / raw_tps, 3),
        "sequential_tokens_per_s": round(stock_tps, 1),
        "engine_vs_sequential": round(engine_tps / stock_tps, 2),
        "strict_sequential_tokens_per_s": round(strict_tps, 1),
        "engine_vs_strict_sequential": round(engine_tps / strict_tps, 2),
        "score_decisions_per_s": round(score_dps, 2),
        "generate_decisions_per_s": round(gen_dps, 2),
        "generate_parse_rate": round(parse_rate, 3),
        "score_vs_generate": round(score_dps / gen_dps, 2),
        "generate_6_decisions_per_s": round(short_dps, 2),
        "generate_6_parse_rate": round(short_parse, 3),
        "score_vs_generate_6": round(score_dps / short_dps, 2),
        "bucketing_mixed_vs_sorted": round(mixed_ratio, 3),
        "prefix_prefill_saved": round(prefix_saved, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "wall_s": round(time.perf_counter() - started_all, 1),
    }
    gpu = hf.info.device.startswith("cuda")
    if gpu:
        import torch

        figures["peak_gpu_mib"] = round(torch.cuda.max_memory_reserved() / 2**20)
    targets = {"engine_vs_raw": (">=", 0.90), "engine_vs_sequential": (">=", 8.0),
               "score_vs_generate": (">=", 5.0 if gpu else 1.0),
               "bucketing_mixed_vs_sorted": ("<=", 1.3)}
    table = Table(title="TraitLab throughput")
    for column in ("figure", "value", "target"):
        table.add_column(column)
    for key, value in figures.items():
        target = ""
        if key in targets:
            op, bound = targets[key]
            ok = value >= bound if op == ">=" else value <= bound
            target = f"{op} {bound} {'[green]met' if ok else '[red]not met'}"
        table.add_row(key, str(value), target)
    Console().print(table)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
