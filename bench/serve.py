"""``traitlab serve`` against the in-process backend, and batched against one-at-a-time, in one run.

Usage::

    .venv/bin/python bench/serve.py [--quick] [--dtype auto] [--device cpu] [--model PATH]

The workload is the 32-agent dialogue of ``bench/throughput.py`` (its scenario and helpers
are imported, not copied): 32 agents in random pairs, two lock-step replicas, so every wave
has 32 rows. Decoding is greedy (temperature 0), so every path must produce the same tokens;
a line says so when one does not. One hf backend (SmolLM2 by default) serves both sides: it
runs in this process and behind a ``traitlab serve`` started on 127.0.0.1 in a background
thread, which the OpenAI-compatible client (``OpenAIBackend``) reaches over HTTP.

* ``serve_vs_inprocess``: new tokens per second of the dialogue run through the engine with
  the client backend (every wave sent as concurrent HTTP requests, gathered by the server
  into one batch) over the same run with the in-process hf backend (target >= 0.8 on a CPU);
* ``batched_vs_one_at_a_time``: the served engine's tokens per second over the same requests
  (drawn evenly from all its waves) sent to the same server one at a time, each waiting for
  its reply before the next, as a peer that does not batch sends them (target >= 5).

Both figures are ratios of measurements taken in this run; times are printed beside them.
Without ``--quick`` each measurement runs in two rounds (in alternating order) and keeps
its better round, since a shared CPU's speed drifts from minute to minute. The last line
printed is the JSON of all figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402
from throughput import Recording, dialogue_spec, spread  # noqa: E402

from sim.backends.hf.backend import HFBackend  # noqa: E402
from sim.backends.openai import OpenAIBackend, OpenAIConfig  # noqa: E402
from sim.engine.loop import Engine  # noqa: E402
from sim.executors.local import LocalExecutor  # noqa: E402
from sim.requests import GenerateRequest, GenerateResult  # noqa: E402
from sim.scenario.spec import RunConfig  # noqa: E402
from sim.serve import ServerHandle, start_server  # noqa: E402

TARGETS = {"serve_vs_inprocess": 0.8, "batched_vs_one_at_a_time": 5.0}
"""Each figure's target (a lower bound) on a CPU."""


class Replies(Recording):
    """A recording proxy that also keeps every reply's text, in wave order."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self.texts: list[str] = []

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        results = super().generate(requests)
        self.texts.extend(r.text for r in results)
        return results


def run_greedy(backend: Any, agents: int, turns: int, max_new: int) -> tuple[float, int, Replies]:
    """Run the dialogue through the engine, greedy; return its seconds, new tokens and replies."""
    proxy = Replies(backend)
    config = RunConfig(seed=7, replicas=2, max_new_tokens=max_new, temperature=0.0)
    executor = LocalExecutor(proxy)  # type: ignore[arg-type]
    engine = Engine(dialogue_spec(agents, turns, max_new), config, executor)
    started = time.perf_counter()
    engine.run()
    return time.perf_counter() - started, executor.stats.new_tokens, proxy


def one_at_a_time(client: OpenAIBackend,
                  requests: Sequence[GenerateRequest]) -> tuple[float, int, list[str]]:
    """Send ``requests`` one by one, each after the last reply; seconds, new tokens, texts."""
    tokens, texts = 0, []
    started = time.perf_counter()
    for request in requests:
        result = client.generate([request])[0]
        tokens += result.num_new_tokens
        texts.append(result.text)
    return time.perf_counter() - started, tokens, texts


def machine() -> dict[str, Any]:
    """The CPU's model name and whether it has AVX512-BF16, and the code's commit."""
    cpu, bf16 = platform.processor() or platform.machine(), False
    try:
        info = Path("/proc/cpuinfo").read_text()
        names = [line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
        bf16 = " avx512_bf16" in info
    except OSError:
        pass
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += "-dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"cpu": cpu, "avx512_bf16": bf16, "commit": commit}


def server_stats(handle: ServerHandle) -> dict[str, int]:
    """The server's wave counters (waves, requests, largest wave) from ``/health``."""
    import httpx

    return dict(httpx.get(f"{handle.url}/health", timeout=10.0).json())


class Best:
    """The best (highest tokens/s) round of each measurement, with its seconds and tokens."""

    def __init__(self) -> None:
        self.rounds: dict[str, tuple[float, float, int]] = {}

    def add(self, name: str, seconds: float, tokens: int) -> float:
        """Keep this round if it is the fastest so far; return its tokens per second."""
        rate = tokens / seconds
        if rate > self.rounds.get(name, (0.0, 0.0, 0))[0]:
            self.rounds[name] = (rate, seconds, tokens)
        return rate

    def rate(self, name: str) -> float:
        """The best tokens per second of ``name``."""
        return self.rounds[name][0]


def measure(hf: HFBackend, client: OpenAIBackend, handle: ServerHandle, args: argparse.Namespace,
            console: Console) -> tuple[Best, list[str], dict[str, int]]:
    """Every round of every measurement; the best of each, mismatch lines, server waves."""
    turns, max_new, seq_n = (2, 32, 8) if args.quick else (4, 40, 32)
    rounds = 1 if args.quick else 2
    best, mismatches = Best(), []
    waves: dict[str, int] = {}
    for round_ in range(rounds):
        order = ("inprocess", "served") if round_ % 2 == 0 else ("served", "inprocess")
        runs: dict[str, Replies] = {}
        for name in order:
            hf.forget_prefixes()  # each run starts with no prompt KV kept from the last
            before = server_stats(handle)
            seconds, tokens, runs[name] = run_greedy(
                hf if name == "inprocess" else client, 32, turns, max_new)
            rate = best.add(name, seconds, tokens)
            if name == "served":
                after = server_stats(handle)
                waves = {k: after[k] - before[k] for k in ("waves", "requests")}
                waves["largest_wave"] = after["largest_wave"]
            console.print(f"  [{round_ + 1}/{rounds}] engine, {name}: {tokens} new tokens in "
                          f"{seconds:.1f} s ({rate:.1f} tokens/s)")
        if runs["inprocess"].texts != runs["served"].texts:
            differ = sum(a != b for a, b in zip(runs["inprocess"].texts, runs["served"].texts,
                                                strict=False))
            mismatches.append(f"round {round_ + 1}: {differ} of {len(runs['served'].texts)} "
                              "served replies differ from the in-process ones")
        flat = [r for wave in runs["served"].generate_waves for r in wave]
        picked = spread(runs["served"].generate_waves, seq_n)
        hf.forget_prefixes()
        seconds, tokens, texts = one_at_a_time(client, picked)
        rate = best.add("one_at_a_time", seconds, tokens)
        console.print(f"  [{round_ + 1}/{rounds}] one at a time: {len(picked)} requests from all "
                      f"waves, {tokens} new tokens in {seconds:.1f} s ({rate:.1f} tokens/s)")
        expected = [runs["served"].texts[flat.index(r)] for r in picked]
        differ = sum(a != b for a, b in zip(expected, texts, strict=True))
        if differ:
            mismatches.append(f"round {round_ + 1}: {differ} of {len(picked)} one-at-a-time "
                              "replies differ from the same requests' batched replies")
    return best, mismatches, waves


def main(argv: Sequence[str] | None = None) -> int:
    """Start the server, run every measurement, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workload (< 3 minutes)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="a local model folder (default: SmolLM2)")
    parser.add_argument("--window-ms", type=float, default=10.0,
                        help="the server's batching window (default 10 ms)")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    started_all = time.perf_counter()
    tokens, rows = (16_384, 64) if args.device == "cpu" else (262_144, 256)
    hf = HFBackend(args.model, dtype=args.dtype, device=args.device, batch_tokens=tokens,
                   batch_rows=rows)
    console.print(f"model {escape(hf.info.model_id)} dtype={hf.info.dtype} "
                  f"device={hf.info.device}")
    handle = start_server(hf, "127.0.0.1", 0, window_ms=args.window_ms)
    # concurrency above the wave size, so a whole wave is in flight together; no retries,
    # so a failed request shows as a failure instead of a slow round
    config = OpenAIConfig(base_url=handle.base_url, concurrency=64, timeout_s=600.0, retries=0)
    client = OpenAIBackend(config)
    try:
        console.print("warm-up (first-call allocations, the client's capability probe) ...")
        run_greedy(hf, 8, 1, 4)
        run_greedy(client, 8, 1, 4)
        console.print(f"dialogue: 32 agents in pairs x 2 lock-step replicas (32-row waves), "
                      f"greedy, server at {handle.base_url} (window {args.window_ms} ms) ...")
        best, mismatches, waves = measure(hf, client, handle, args, console)
        failures = client.stats["failures"]
    finally:
        client.close()
        handle.stop()
    figures = report(args, hf, best, waves, failures, started_all)
    for line in mismatches:
        print(f"TOKENS DIFFER: {line}")
    print(json.dumps(figures))
    return 0


def report(args: argparse.Namespace, hf: HFBackend, best: Best, waves: dict[str, int],
           failures: int, started_all: float) -> dict[str, Any]:
    """Print the table of figures; return them (with the machine, commit and command)."""
    inproc, served, single = (best.rate(k) for k in ("inprocess", "served", "one_at_a_time"))
    figures: dict[str, Any] = {
        **machine(), "dtype": hf.info.dtype, "device": hf.info.device, "quick": args.quick,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "window_ms": args.window_ms,
        "serve_vs_inprocess": round(served / inproc, 3),
        "batched_vs_one_at_a_time": round(served / single, 2),
        "inprocess_tokens_per_s": round(inproc, 1),
        "served_tokens_per_s": round(served, 1),
        "one_at_a_time_tokens_per_s": round(single, 1),
        **{f"{k}_s": round(v[1], 1) for k, v in best.rounds.items()},
        "server_waves": waves.get("waves", 0), "server_requests": waves.get("requests", 0),
        "server_largest_wave": waves.get("largest_wave", 0),
        "failed_requests": failures,
        "wall_s": round(time.perf_counter() - started_all, 1),
    }
    table = Table(title="traitlab serve")
    for column in ("figure", "value", "target"):
        table.add_column(column)
    for key, value in figures.items():
        target = ""
        if key in TARGETS:
            met = value >= TARGETS[key]
            target = f">= {TARGETS[key]} {'[green]met' if met else '[red]not met'}"
        table.add_row(key, escape(str(value)), target)
    Console().print(table)
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
