"""``traitlab replicate``: score a model against canonical human experiments."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, get_args

__all__ = ["add_parser", "main"]

_EXAMPLE = """example:
  traitlab replicate --backend scripted --policies human          # the scorer's own check
  traitlab replicate --replicas 4 --seed 0 --html scorecard.html  # SmolLM2, every benchmark
  traitlab replicate --only ultimatum,dictator --replicas 2       # a subset
  traitlab replicate --out runs/replicate/x                       # again: resumes, or reprints
"""


def add_parser(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """Add the ``replicate`` sub-command."""
    from sim.scenario.spec import RunConfig

    fields = RunConfig.model_fields
    rep = sub.add_parser("replicate", help="score a model against human experimental results",
                         epilog=_EXAMPLE, formatter_class=fmt)
    rep.add_argument("--backend", choices=list(get_args(fields["backend"].annotation)),
                     default=fields["backend"].default,
                     help="hf (default), scripted (rule policies) or openai")
    rep.add_argument("--model", default=None,
                     help="local HF model folder (default: embedded SmolLM2-135M-Instruct)")
    rep.add_argument("--dtype", choices=list(get_args(fields["dtype"].annotation)),
                     default=fields["dtype"].default)
    rep.add_argument("--only", default=None, metavar="NAMES",
                     help="comma separated benchmarks (default: all)")
    rep.add_argument("--replicas", type=int, default=4,
                     help="replicas per cell: the clusters of every interval (default 4)")
    rep.add_argument("--seed", type=int, default=0, help="run and bootstrap seed (default 0)")
    rep.add_argument("--policies", choices=["human", "contrary"], default=None,
                     help="with --backend scripted: every cell's scripted population built to "
                          "match (human) or contradict (contrary) the human pattern")
    rep.add_argument("--personas", choices=["uniform", "norms"], default="uniform",
                     help="Big Five personas sampled uniformly (the scenarios' own) or around "
                          "human adult norms (IPIP-NEO-120, Johnson)")
    rep.add_argument("--out", type=Path, default=None,
                     help="suite folder (default runs/replicate/<backend>[-<policies>]-s<seed>"
                          "-r<replicas>); an existing one is resumed")
    rep.add_argument("--html", type=Path, default=None, help="also write the scorecard as HTML")
    rep.add_argument("--suite", type=Path, default=None, help=argparse.SUPPRESS)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the suite (or resume it), then print and save the scorecard."""
    from analysis.replicate import score_suite
    from analysis.replicate_report import print_scorecard, summary_counts, write_scorecard_html
    from sim.errors import RunError
    from sim.scenario.spec import RunConfig
    from sim.sweep.replicate import run_suite
    from sim.sweep.suite import SUITE_DIR, load_suite

    if args.policies is not None and args.backend != "scripted":
        raise RunError(f"--policies {args.policies} needs --backend scripted (the populations "
                       "are rule policies). Fix: add --backend scripted.")
    if not 1 <= args.replicas <= 4096:
        raise RunError(f"--replicas {args.replicas}: use a number from 1 to 4096.")
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    suite = load_suite(args.suite or SUITE_DIR).select(only)
    config = RunConfig(backend=args.backend, model=args.model, dtype=args.dtype,
                       seed=args.seed, replicas=args.replicas)
    tag = args.backend + (f"-{args.policies}" if args.policies else "") + (
        "-norms" if args.personas == "norms" else "")
    out = args.out or Path("runs/replicate") / f"{tag}-s{args.seed}-r{args.replicas}"
    started = time.perf_counter()
    result = run_suite(suite, config, out, policies=args.policies, personas=args.personas)
    seconds = time.perf_counter() - started
    card = score_suite(out, suite, seed=args.seed)
    (out / "scorecard.json").write_text(card.to_json())
    header = [("suite", str(out)), ("backend", args.backend),
              ("model", args.model or ("-" if args.backend == "scripted" else "SmolLM2")),
              ("policies", args.policies or "-"), ("personas", args.personas),
              ("seed", str(args.seed)),
              ("replicas", str(args.replicas)),
              ("benchmarks", ", ".join(b.name for b in suite.benchmarks))]
    print_scorecard(card, header, "replication scorecard")
    if args.html is not None:
        print(f"html: {write_scorecard_html(card, header, 'replication scorecard', args.html)}")
    counts = summary_counts(card)
    print(f"{counts['levels_within']}/{counts['levels']} levels within the human range; "
          f"{counts['directions_reproduced']}/{counts['directions']} directions reproduced, "
          f"{counts['directions_reversed']} reversed; {seconds:.1f} s")
    failed = [c for c, s in result.manifest["cells"].items() if s["status"] != "complete"]
    for cid in failed:
        print(f"failed  {cid}: {result.manifest['cells'][cid].get('error')}")
    return 1 if failed else 0
