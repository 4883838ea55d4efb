"""``traitlab run`` flags of the openai backend, and ``--replay``.

Each flag sets one field of :class:`~sim.scenario.api_settings.OpenAISettings`; its help shows
that model's default. The API key is never a flag: ``--api-key-env`` names the environment
variable that holds it, and no error repeats that flag's value.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import RunError

__all__ = ["FLAGS", "add_api_flags", "api_settings", "replay"]

_METAVARS = {"base_url": "URL", "model": "NAME", "api_key_env": "VAR", "timeout_s": "S",
             "price_in_per_million": "USD", "price_out_per_million": "USD"}

FLAGS: dict[str, tuple[str, Any, str]] = {
    "base_url": ("--base-url", str, "the server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1"),
    "model": ("--api-model", str, "model name to request (default: the one the server lists)"),
    "api_key_env": ("--api-key-env", str,
                    "NAME of the environment variable holding the API key (never the key)"),
    "concurrency": ("--concurrency", int, "most requests in flight"),
    "timeout_s": ("--timeout", float, "seconds per request"),
    "retries": ("--retries", int, "retries after a timeout, connection error, 429 or 5xx"),
    "requests_per_minute": ("--rpm", float, "client-side requests per minute"),
    "tokens_per_minute": ("--tpm", float, "client-side tokens per minute"),
    "price_in_per_million": ("--price-in", float, "US dollars per million prompt tokens"),
    "price_out_per_million": ("--price-out", float, "US dollars per million completion tokens"),
}
"""OpenAISettings field -> (flag, type, help)."""


def add_api_flags(run: argparse.ArgumentParser) -> None:
    """Add the openai backend's flags (defaults from :class:`OpenAISettings`) and ``--replay``."""
    from sim.scenario.api_settings import OpenAISettings
    from sim.scenario.spec import RunConfig

    group = run.add_argument_group("openai backend (--backend openai)")
    for field, (flag, kind, text) in FLAGS.items():
        info = OpenAISettings.model_fields[field]
        default = "" if info.is_required() or info.default is None else \
            f" (default {info.default})"
        group.add_argument(flag, dest=f"api_{field}", type=kind, default=None,
                           metavar=_METAVARS.get(field, "N"), help=text + default)
    group.add_argument("--max-cost", type=float, default=RunConfig.model_fields["max_cost"].default,
                       metavar="USD", help="stop (resumably) before a step that would cross this "
                                           "estimated cost; needs --price-in/--price-out")
    run.add_argument("--replay", type=Path, default=None, metavar="RUN_DIR",
                     help="re-run an openai-backend run from its stored responses, with no "
                          "server, into a new run directory")


def api_settings(args: argparse.Namespace) -> Any:
    """The ``api`` settings the flags ask for (``None`` unless ``--backend openai``).

    Raises:
        RunError: a flag is missing, misplaced or has a bad value (one line, with the fix).
    """
    from sim.scenario.api_settings import OpenAISettings

    given = {field: getattr(args, f"api_{field}") for field in FLAGS
             if getattr(args, f"api_{field}", None) is not None}
    if args.backend != "openai":
        if given:
            flag = FLAGS[next(iter(given))][0]
            raise RunError(f"{flag} needs --backend openai. Fix: add --backend openai, or drop "
                           f"{flag}.")
        return None
    if "base_url" not in given:
        raise RunError("--backend openai needs --base-url URL, the server's OpenAI base URL. "
                       "Fix: e.g. --base-url http://127.0.0.1:8000/v1")
    try:
        return OpenAISettings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "base_url"
        flag = FLAGS.get(field, (f"--{field}",))[0]
        shown = "" if field == "api_key_env" else f" {err['input']!r}"  # it may be the key
        raise RunError(f"{flag}{shown}: {err['msg']}.") from None


def replay(args: argparse.Namespace, argv: list[str]) -> int:
    """``traitlab run --replay RUN_DIR``: the run again, every answer from its response store."""
    from sim.backends.factory import RESPONSES_DIR
    from sim.backends.openai import ReplayBackend
    from sim.records.recorder import read_manifest
    from sim.run.runner import run_scenario
    from sim.scenario.loader import load_scenario
    from sim.scenario.spec import RunConfig

    if args.scenario is not None or args.resume is not None:
        raise RunError("--replay RUN_DIR takes no scenario file and no --resume.")
    source = args.replay.expanduser().resolve()
    manifest = read_manifest(source)
    config = RunConfig.model_validate(manifest["run_config"])
    if config.backend != "openai" or not (source / RESPONSES_DIR).is_dir():
        raise RunError(f"--replay {source}: the run has no stored server responses (backend "
                       f"{config.backend!r}). Fix: replay a run made with --backend openai.")
    explicit = any(a == "--out" or a.startswith("--out=") for a in argv)
    out = args.out if explicit else source.parent.parent  # beside the original by default
    config = config.model_copy(update={"out": out, "max_cost": None})
    loaded = load_scenario(source / "scenario.yaml")
    with ReplayBackend(source / RESPONSES_DIR) as backend:
        outcome = run_scenario(loaded, config, backend=backend, command=["traitlab", *argv])
    print(outcome.path)
    return 0
