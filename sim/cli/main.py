"""The ``traitlab`` command: parse, build a config, call the library, map errors to exit codes.

User mistakes exit 2 with one line on stderr per problem; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import ValidationError

from sim.cli import examples, readers
from sim.errors import RunError, ScenarioErrors, TraitLabError

if TYPE_CHECKING:
    from sim.scenario.loader import LoadedScenario
    from sim.scenario.spec import RunConfig

__all__ = ["main"]

def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="traitlab", formatter_class=fmt, epilog=examples.EPILOG,
        description="Social simulations of personality-conditioned LLM agents, batched.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario", epilog=examples.RUN_EXAMPLE,
                         formatter_class=fmt)
    run.add_argument("scenario", type=Path, nargs="?", help="scenario YAML file")
    run.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                     help="continue a crashed or interrupted run in its own directory "
                          "(with the run's own scenario and settings)")
    _add_run_settings(run)
    run.add_argument("--set", action="append", default=[], dest="overrides", metavar="PATH=VALUE",
                     help="set a scenario field by its dotted path (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: the model in this process (default); ray: model replicas "
                          "as Ray actors, each wave split across them")
    run.add_argument("--ray-address", default=None, metavar="ADDR",
                     help="with --executor ray: join this cluster (default: local Ray)")
    run.add_argument("--ray-replicas", type=int, default=None, metavar="N",
                     help="with --executor ray: model replicas (default: one per GPU, else 1)")
    from sim.cli.sweep import add_parser as add_sweep_parser
    from sim.cli.view import add_run_flags

    add_sweep_parser(sub, fmt)
    add_run_flags(run, sub)  # and ``traitlab view``

    validate = sub.add_parser("validate", help="check scenario files",
                              epilog=examples.VALIDATE_EXAMPLE, formatter_class=fmt)
    validate.add_argument("files", type=Path, nargs="+")

    sub.add_parser("schema", help="print the JSON Schema of the scenario format",
                   epilog=examples.SCHEMA_EXAMPLE, formatter_class=fmt)

    show = sub.add_parser("show", help="print a run's transcript", epilog=examples.SHOW_EXAMPLE,
                          formatter_class=fmt)
    show.add_argument("run_dir", type=Path)
    show.add_argument("--limit", type=int, default=200,
                      help="at most N events or prompts (default 200)")
    show.add_argument("--prompts", action="store_true",
                      help="print the distinct prompts the agents were shown, with their hashes")

    analyze = sub.add_parser("analyze", help="analyse a run or a sweep of runs",
                             epilog=examples.ANALYZE_EXAMPLE, formatter_class=fmt)
    analyze.add_argument("path", type=Path, metavar="RUN_OR_SWEEP_DIR",
                         help="a run directory, or a folder with run directories below it")
    analyze.add_argument("--html", type=Path, default=None,
                         help="also write a self-contained HTML report to this file")
    analyze.add_argument("--seed", type=int, default=0,
                         help="seed of surrogates and bootstraps (default 0)")
    from sim.cli.probe import add_parser as add_probe_parser

    add_probe_parser(sub, fmt)
    from sim.cli.serve import add_parser as add_serve_parser

    add_serve_parser(sub, fmt)

    from sim.cli.validity import add_parser as add_validity_parser

    add_validity_parser(sub, fmt)

    from sim.cli.replicate import add_parser as add_replicate_parser

    add_replicate_parser(sub, fmt)

    from sim.cli.interview import add_parser as add_interview_parser

    add_interview_parser(sub, fmt)
    from sim.cli.fork import add_parser as add_fork_parser

    add_fork_parser(sub, fmt, run)  # and ``run --intervene``
    return parser


def _add_run_settings(run: argparse.ArgumentParser) -> None:
    """The flags that become :class:`RunConfig` fields, with its defaults and choices."""
    from sim.scenario.spec import RunConfig

    fields = RunConfig.model_fields

    def default(name: str) -> Any:
        return fields[name].default

    def choices(name: str) -> list[str]:
        return list(get_args(fields[name].annotation))

    run.add_argument("--seed", type=int, default=default("seed"),
                     help=f"run seed (default {default('seed')})")
    run.add_argument("--backend", choices=choices("backend"), default=default("backend"),
                     help="hf: a local transformers model (default); scripted: rule policies; "
                          "openai: an OpenAI-compatible server (--base-url)")
    run.add_argument("--model", default=default("model"),
                     help="local HF model folder (default: embedded SmolLM2-135M-Instruct)")
    run.add_argument("--dtype", choices=choices("dtype"), default=default("dtype"),
                     help="auto: bf16 on GPUs and CPUs with native bf16 (AMX), else fp32")
    run.add_argument("--device", choices=choices("device"), default=default("device"))
    from sim.cli.sweep import out_dir

    run.add_argument("--out", type=out_dir, default=default("out"),
                     help=f"output root ({default('out')}/)")
    run.add_argument("--steps", type=int, default=default("steps"),
                     help="stop after N steps")
    run.add_argument("--replicas", type=int, default=default("replicas"),
                     help="run R seeds side by side, batched together")
    run.add_argument("--max-new-tokens", type=int, default=default("max_new_tokens"))
    run.add_argument("--temperature", type=float, default=default("temperature"))
    run.add_argument("--batch-tokens", type=int, default=default("batch_tokens"),
                     help="token budget of one forward batch")
    run.add_argument("--batch-rows", type=int, default=default("batch_rows"),
                     help="most rows in one forward batch (a GPU takes whole waves: 256+)")
    run.add_argument("--prefix-cache-mib", type=int, default=default("prefix_cache_mib"),
                     metavar="MIB",
                     help="memory for prompt KV kept between a step's waves, reused by later "
                          "prompts that extend earlier ones (0: off)")
    from sim.cli.api_flags import add_api_flags

    add_api_flags(run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``traitlab`` console script; returns the exit code."""
    from sim.cli.terminal import survive_closed_pipe

    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        from sim.cli.interview import take_question

        if not take_question(args, extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return survive_closed_pipe(lambda: _dispatch(args, argv))


def _dispatch(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Run the chosen command; user errors become one visible line each on stderr."""
    from sim.cli.terminal import visible

    try:
        if args.command == "run":
            return _run(args, list(argv) if argv is not None else sys.argv[1:])
        if args.command == "sweep":
            from sim.cli.sweep import main as sweep_main

            return sweep_main(args, list(argv) if argv is not None else sys.argv[1:])
        if args.command == "validate":
            return readers.validate(args.files)
        if args.command == "schema":
            from sim.scenario.spec import ScenarioSpec

            print(json.dumps(ScenarioSpec.model_json_schema(by_alias=True), indent=2))
            return 0
        if args.command == "analyze":
            return readers.analyze(args.path, args.html, args.seed)
        if args.command == "probe":
            from sim.cli.probe import main as probe_main

            return probe_main(args, list(argv) if argv is not None else sys.argv[1:])
        if args.command == "replicate":
            from sim.cli.replicate import main as replicate_main

            return replicate_main(args, list(argv) if argv is not None else sys.argv[1:])
        if args.command == "serve":
            from sim.cli.serve import main as serve_main

            return serve_main(args, list(argv) if argv is not None else sys.argv[1:])
        if args.command == "view":
            return args.handler(args)
        if args.command == "interview":
            from sim.cli.interview import main as interview_main

            return interview_main(args, list(argv) if argv is not None else sys.argv[1:])
        if args.command == "fork":
            from sim.cli.fork import main as fork_main

            return fork_main(args, list(argv) if argv is not None else sys.argv[1:])
        if args.command == "validity":
            from sim.cli.validity import main as validity_main

            return validity_main(args)
        return readers.show(args.run_dir, args.limit, prompts=args.prompts)
    except TraitLabError as exc:
        if args.debug:
            raise
        for problem in exc.errors if isinstance(exc, ScenarioErrors) else (exc,):
            print(visible(f"error: {problem}"), file=sys.stderr)
        return 2
    except ValidationError as exc:  # a bad flag value reaching RunConfig
        if args.debug:
            raise
        err = exc.errors()[0]
        if not err["loc"]:  # a check across fields: its message names them
            print(f"error: {err['msg']}.", file=sys.stderr)
            return 2
        flag = "--" + str(err["loc"][0]).replace("_", "-")
        print(visible(f"error: {flag} {err['input']!r}: {err['msg']}."), file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from sim.errors import BudgetReached, RunInterrupted

        if isinstance(exc, BudgetReached):
            print(f"{exc} Resume: {exc.resume_command}", file=sys.stderr)
            return 3
        if isinstance(exc, RunInterrupted):
            print(visible(f"interrupted; records so far are kept. Resume: "
                          f"{exc.resume_command}"), file=sys.stderr)
        else:
            print("interrupted; records written so far are kept.", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from sim.cli.api_flags import api_settings, replay
    from sim.cli.fork import resume_any
    from sim.cli.view import live_view
    from sim.run.runner import run_scenario
    from sim.scenario.loader import load_scenario
    from sim.scenario.overrides import apply_overrides
    from sim.scenario.spec import RunConfig

    if args.replay is not None:
        return replay(args, argv)
    if args.resume is not None:
        if args.overrides or args.intervene:
            flag = "--set" if args.overrides else "--intervene"
            raise RunError(f"{flag} changes a scenario, but a resumed run keeps its own. Fix: "
                           f"drop {flag}, or start a new run with it.")
        return resume_any(args, argv, _resume)
    if args.scenario is None:
        raise RunError("traitlab run needs a scenario file, or --resume RUN_DIR.")
    loaded = load_scenario(args.scenario)
    if args.overrides:
        loaded = apply_overrides(loaded, args.overrides)
    if args.intervene is not None:
        from sim.cli.fork import with_interventions

        loaded = with_interventions(loaded, args.intervene)
    api = api_settings(args)
    config = RunConfig(api=api, **{name: getattr(args, name) for name in RunConfig.model_fields
                                   if hasattr(args, name)})
    if not args.ray_address:  # a remote cluster's workers may hold the model, not this host
        _check_model(config)
    executor = _ray_executor(args, config)
    with live_view(args, loaded.spec, config) as view:
        try:
            if args.quiet:
                outcome = run_scenario(loaded, config, command=["traitlab", *argv],
                                       executor=executor, **view.kwargs)
                print(outcome.path)
                return view.linger()
            from sim.cli.progress import RunProgress

            total = _planned_steps(loaded, config)
            with RunProgress(total=total, title=loaded.spec.name) as progress:
                progress.status({"hf": "loading model", "openai": "asking the server"}.get(
                    config.backend, "starting"))
                started = time.perf_counter()
                outcome = run_scenario(loaded, config, callbacks=[progress.update],
                                       command=["traitlab", *argv], executor=executor,
                                       **view.kwargs)
        finally:
            if executor is not None:
                from sim.executors.ray import shutdown_ray

                executor.close()
                if executor.owns_ray:
                    shutdown_ray()
        from analysis.io import load_run
        from sim.cli.progress import print_summary

        print_summary(load_run(outcome.path), time.perf_counter() - started)
        return view.linger()


def _check_model(config: RunConfig) -> None:
    """Fail before the progress bar starts if the embedded model is missing (one line)."""
    if config.backend == "hf" and config.model is None:
        from sim.backends.hf.model_store import check_default_model

        check_default_model()


def _ray_executor(args: argparse.Namespace, config: RunConfig) -> Any:
    """A RayExecutor for ``--executor ray`` (None for the local executor)."""
    if args.executor != "ray":
        if args.ray_address or args.ray_replicas:
            raise RunError("--ray-address and --ray-replicas need --executor ray.")
        return None
    if args.ray_replicas is not None and args.ray_replicas < 1:
        raise RunError(f"--ray-replicas {args.ray_replicas}: use 1 or more.")
    from sim.executors.ray import RayExecutor, init_ray, is_initialized

    owns = not is_initialized()
    init_ray(args.ray_address)
    executor = RayExecutor.start(config, args.ray_replicas)
    executor.owns_ray = owns
    return executor


def _resume(args: argparse.Namespace, argv: list[str]) -> int:
    from sim.run.runner import resumable, resume_run

    if args.scenario is not None or args.view:
        raise RunError("pass either a scenario file or --resume RUN_DIR, not both (watch a "
                       "resumed run with traitlab view RUN_DIR in another terminal).")
    manifest = resumable(args.resume)
    command = ["traitlab", *argv]
    if args.quiet:
        print(resume_run(args.resume, command=command, max_cost=args.max_cost).path)
        return 0
    from analysis.io import load_run
    from sim.cli.progress import RunProgress, print_summary
    from sim.records.checkpoint import read_checkpoint
    from sim.scenario.loader import load_scenario
    from sim.scenario.spec import RunConfig

    loaded = load_scenario(args.resume / "scenario.yaml")
    config = RunConfig.model_validate(manifest["run_config"])
    _check_model(config)
    total = _planned_steps(loaded, config)
    checkpoint = read_checkpoint(args.resume, manifest["spec_hash"])
    done = checkpoint["step"] if checkpoint is not None else 0
    with RunProgress(total=total, title=loaded.spec.name, completed=done) as progress:
        progress.status(f"resuming after step {done}")
        started = time.perf_counter()
        outcome = resume_run(args.resume, callbacks=[progress.update], command=command,
                             max_cost=args.max_cost)
    print_summary(load_run(outcome.path), time.perf_counter() - started)
    return 0


def _planned_steps(loaded: LoadedScenario, config: RunConfig) -> int:
    from sim.scenario.flow import ScenarioGraph

    steps = ScenarioGraph.compile(loaded.spec).num_steps()
    return min(steps, config.steps) if config.steps else steps


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
