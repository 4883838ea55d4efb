"""``traitlab probe``: the conditioning-validation study's flags, read from ``ProbeConfig``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, get_args

from sim.errors import RunError

__all__ = ["add_parser", "main"]

_PROBE_EXAMPLE = """example:
  traitlab probe --personas 64 --method prompt,steering,both --instrument ipip-50 --seed 0
  traitlab probe --personas 16 --method prompt --instrument mini-ipip      # a quick look
  traitlab probe --summarise runs/probe/20261123T180000Z-1a2b3c            # reprint a table
"""


class _DeprecatedAlias(argparse.Action):
    """An old spelling of a flag: stores into the new flag's destination, with a note."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        new = "--" + self.dest.replace("_", "-")
        print(f"note: {option_string} is deprecated; use {new}.", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               fmt: type[argparse.HelpFormatter]) -> None:
    """Add the ``probe`` sub-command, its defaults read from :class:`ProbeConfig`."""
    from agents.instruments import RESTRICTED_FLAG
    from sim.probe.probe import ProbeConfig

    fields = ProbeConfig.model_fields

    def default(name: str) -> Any:
        return fields[name].default

    def choices(name: str) -> list[str]:
        return list(get_args(fields[name].annotation))

    probe = sub.add_parser(
        "probe", help="conditioning-validation study: do personas move the questionnaire?",
        epilog=_PROBE_EXAMPLE, formatter_class=fmt)
    probe.add_argument("--personas", type=int, default=default("personas"),
                       help=f"personas sampled ({default('personas')})")
    probe.add_argument("--method", default=",".join(default("methods")),
                       help="comma separated: none, prompt, steering, both")
    probe.add_argument("--instrument", default=default("instrument"),
                       help=f"{default('instrument')} (default), mini-ipip, ipip-neo-120")
    probe.add_argument(RESTRICTED_FLAG, dest="allow_restricted", action="store_true",
                       help="allow licence-restricted instruments (bfi-44)")
    probe.add_argument("--seed", type=int, default=default("seed"))
    probe.add_argument("--model", default=default("model"), help="local HF model folder")
    probe.add_argument("--dtype", choices=choices("dtype"), default=default("dtype"))
    probe.add_argument("--device", choices=choices("device"), default=default("device"))
    probe.add_argument("--out", type=Path, default=default("out"))
    probe.add_argument("--strength", type=float, default=default("strength"),
                       help="fixed steering strength for every trait (skips calibration)")
    probe.add_argument("--no-calibrate", action="store_true",
                       help="skip calibration (strength 4 unless --strength)")
    probe.add_argument("--layers", default=None, help="steered decoder layers, e.g. 12 or 10,14")
    probe.add_argument("--batch-tokens", type=int, default=default("batch_tokens"),
                       help=f"token budget of one forward batch ({default('batch_tokens')})")
    probe.add_argument("--batch-rows", type=int, default=default("batch_rows"),
                       help=f"most rows in one forward batch ({default('batch_rows')})")
    probe.add_argument("--batch-size", type=int, dest="batch_rows", action=_DeprecatedAlias,
                       metavar="BATCH_ROWS", help="deprecated spelling of --batch-rows")
    probe.add_argument("--summarise", type=Path, default=None, metavar="PROBE_DIR",
                       help="only print the table of an existing probe directory")


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``traitlab probe`` (or reprint a table with ``--summarise``)."""
    from sim.cli.probe_report import summarise
    from sim.probe.probe import ProbeConfig, run_probe

    if args.summarise is not None:
        if not (args.summarise / "survey.parquet").exists():
            raise RunError(f"{args.summarise}: no survey.parquet; not a probe directory.")
        summarise(args.summarise)
        return 0
    try:
        layers = tuple(int(x) for x in args.layers.split(",")) if args.layers else None
    except ValueError as exc:
        raise RunError(f"--layers {args.layers!r}: expected integers like 12 or 10,14.") \
            from exc
    cfg = ProbeConfig(
        personas=args.personas, methods=tuple(m.strip() for m in args.method.split(",") if
                                              m.strip()),
        instrument=args.instrument, seed=args.seed, out=args.out, model=args.model,
        dtype=args.dtype, device=args.device, batch_tokens=args.batch_tokens,
        batch_rows=args.batch_rows,
        calibrate=not args.no_calibrate, strength=args.strength, layers=layers,
        allow_restricted=args.allow_restricted)
    result = run_probe(cfg, log=lambda m: print(m, file=sys.stderr, flush=True),
                       command=["traitlab", *argv])
    summarise(result.path)
    t = result.manifest["timings_s"]
    print(f"\n{result.path}  ({t['total_s']:.0f} s total, survey {t['survey_s']:.0f} s)")
    return 0
