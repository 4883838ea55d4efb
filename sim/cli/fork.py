"""``traitlab fork``: continue a recorded run from a past step with one change.

Also ``traitlab run --intervene FILE`` (the same interventions files).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import RunError

if TYPE_CHECKING:
    from sim.scenario.loader import LoadedScenario

__all__ = ["add_parser", "main", "resume_any", "with_interventions"]

_EXAMPLE = """example:
  traitlab fork runs/public-goods-gated/20261123T101500Z-1a2b3c --at 5 --set params.punishment=1
  traitlab fork RUN_DIR --at 5                       # no change: the parent's records again
  traitlab fork RUN_DIR --at 5 --intervene scenarios/interventions/commons_quota.yaml
  traitlab fork RUN_DIR --at 5 --set params.punishment=1 --seed new --replicas 4   # a fork set
  traitlab analyze FORK_OR_FORKSET_DIR               # the "Fork effects" section
  traitlab run --resume FORK_OR_FORKSET_DIR          # after Ctrl-C: every unfinished fork

The fork shares the parent's records up to STEP (not copied) and continues with the parent's
backend, model and settings. --replicas N makes N continuations of the changed and the
unchanged arm, paired by their draws, under one fork-set folder (see docs/forks.md).
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               fmt: type[argparse.HelpFormatter], run: argparse.ArgumentParser) -> None:
    """Add the ``fork`` sub-command, and ``--intervene`` to ``run``."""
    from sim.cli.sweep import out_dir
    from sim.scenario.spec import RunConfig

    run.add_argument("--intervene", type=Path, default=None, metavar="FILE",
                     help="add the interventions of a file (each with at: or when:)")
    parser = sub.add_parser("fork", help="continue a run from a past step with a change",
                            epilog=_EXAMPLE, formatter_class=fmt)
    parser.add_argument("fork_dir", type=Path, metavar="RUN_DIR", help="the run to fork")
    parser.add_argument("--at", type=int, required=True, metavar="STEP",
                        help="the step at whose end the fork starts (0: before the first)")
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        metavar="PATH=VALUE", help="change a scenario field (repeatable)")
    parser.add_argument("--intervene", type=Path, default=None, metavar="FILE",
                        help="interventions: without at:/when: applied at the fork point")
    parser.add_argument("--seed", choices=["keep", "new"], default="keep",
                        help="keep: the parent's draws (default); new: derived other draws")
    parser.add_argument("--replicas", type=int, default=None, metavar="N",
                        help="N continuations of the changed and the unchanged arm")
    parser.add_argument("--out", type=out_dir, default=None,
                        help="output root (default: the parent's)")
    parser.add_argument("--quiet", action="store_true", help="print only the path")
    fields = RunConfig.model_fields
    for name in ("backend", "dtype", "device"):
        parser.add_argument(f"--{name}", default=None,
                            choices=list(fields[name].annotation.__args__))  # type: ignore[union-attr]
    parser.add_argument("--model", default=None, help="continue with another model folder")


def with_interventions(loaded: LoadedScenario, path: Path) -> LoadedScenario:
    """``traitlab run --intervene FILE``: the scenario with the file's interventions added."""
    from sim.scenario.interventions import load_interventions, merge_interventions

    items = load_interventions(path, loaded.spec)
    return merge_interventions(loaded, items, source=str(path))


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """Make the fork (or fork set), run it, print where it went."""
    from sim.cli.terminal import safe_text
    from sim.records.files import read_manifest
    from sim.run.fork import fork_run, fork_set

    if args.at < 0:
        raise RunError(f"--at {args.at}: a step is 0 (before the first step) or more.")
    read_manifest(args.fork_dir.expanduser())  # a missing run: one line before anything loads
    settings: dict[str, Any] = {k: getattr(args, k) for k in ("backend", "model", "dtype",
                                                              "device")
                                if getattr(args, k) is not None}
    if args.out is not None:
        settings["out"] = str(args.out)
    command = ["traitlab", *argv]
    common = {"overrides": args.overrides, "interventions": args.intervene,
              "seed": args.seed, "settings": settings, "command": command}
    if args.replicas is None:
        outcome = fork_run(args.fork_dir, args.at, **common)
        print(outcome.path if args.quiet else safe_text(
            f"fork of {args.fork_dir} at step {args.at}: {outcome.path} ({outcome.status}, "
            f"{outcome.steps} steps)"))
        return 0
    result = fork_set(args.fork_dir, args.at, replicas=args.replicas, **common)
    if args.quiet:
        print(result.path)
        return 0
    print(safe_text(f"fork set of {args.fork_dir} at step {args.at}: {result.path}"))
    for arm, i, path in result.forks:
        print(safe_text(f"  {arm:9} {i:2d}  {path.name}"))
    print(safe_text(f"effects: traitlab analyze {result.path}"))
    return 0


def resume_any(args: argparse.Namespace, argv: list[str],
               single: Callable[[argparse.Namespace, list[str]], int]) -> int:
    """``traitlab run --resume DIR``: every unfinished fork of a fork set, else ``single``."""
    from sim.cli.terminal import safe_text
    from sim.run.fork import read_forkset, resume_forkset

    if read_forkset(args.resume.expanduser()) is None:
        return single(args, argv)
    if args.scenario is not None or args.view:
        raise RunError("pass either a scenario file or --resume FORKSET_DIR, not both.")

    def started(arm: str, i: int, path: Path) -> None:
        if not args.quiet:
            print(safe_text(f"  resuming {arm} {i:2d}  {path.name}"), flush=True)

    forks = resume_forkset(args.resume, command=["traitlab", *argv], max_cost=args.max_cost,
                           started=started)
    if args.quiet:
        print(args.resume)
        return 0
    resumed = [f for f in forks if f[3] is not None]
    if not resumed:
        print(safe_text(f"fork set {args.resume}: all {len(forks)} forks are complete; "
                        "nothing to resume."))
        return 0
    print(safe_text(f"fork set {args.resume}: {len(resumed)} of {len(forks)} forks resumed"))
    for arm, i, path, outcome in forks:
        state = "was complete" if outcome is None else f"{outcome.status}, {outcome.steps} steps"
        print(safe_text(f"  {arm:9} {i:2d}  {path.name}  ({state})"))
    print(safe_text(f"effects: traitlab analyze {args.resume}"))
    return 0
