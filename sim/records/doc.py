"""Generate ``docs/records.md``: every file of a run directory and every column of its tables.

The column lines come from :data:`sim.records.schemas.COLUMN_DOCS` next to the schemas, so the
document cannot drift from what the recorder writes (``tests/test_docs.py`` compares them).
Regenerate after changing a schema::

    python -m sim.records.doc > docs/records.md
"""

from __future__ import annotations

import sys
from typing import Any

from agents.memory import MEMORY_LIMIT
from sim.records.checkpoint import SNAPSHOT_EVERY
from sim.records.schemas import COLUMN_DOCS, TABLES

__all__ = ["CHECKPOINT_KEYS", "FORKSET_FILES", "MANIFEST_KEYS", "RUN_FILES", "SWEEP_FILES",
           "render"]

RUN_FILES: dict[str, str] = {
    "manifest.json": "what ran and how it went; see *manifest.json* below",
    "scenario.yaml": "the resolved scenario (values equal to their defaults left out); "
                     "it loads back to the same spec hash, which resume checks",
    "agents.parquet": "one row per agent and replica: the `agents` table",
    "network.parquet": "one row per edge and replica (empty without a network): "
                       "the `network` table",
    "events/step-NNNNNN.parquet": "one shard per step, one row per outcome: the `events` table",
    "surveys/step-NNNNNN.parquet": "survey stages only: one row per administered item, "
                                   "the `surveys` table",
    "prompts/step-NNNNNN.parquet": "every distinct request (what agents were told) once per "
                                   "run, in the shard of the step that first sent it, "
                                   "zstd-compressed: the `prompts` table, linked from "
                                   "events by `prompt_hash`",
    "state/step-NNNNNN.parquet": "scenarios with `state:` or `agent_state:` only: the world "
                                 "state after every step, one row per variable, the `state` "
                                 "table",
    "checkpoints/step-NNNNNN.json": "one document per step from step 0 (before the first): "
                                    "everything needed to continue after a crash or to "
                                    "reopen the run at that step; see *checkpoints/*",
    "interviews/<id>.parquet": "`traitlab interview` only: one row per (agent, question), "
                               "the `interviews` table; beside it `<id>-prompts.parquet` "
                               "(the requests, as the `prompts` table), `<id>.json` (step, "
                               "agents, questions, instrument, memory, seed, model, command) "
                               "and, with `--instrument`, `<id>-survey.parquet` (the "
                               "`surveys` table's columns, stage `interview`). An interview "
                               "adds only these files",
    "steering.json": "steering runs only: directions used (layers, weights hash, recipe "
                     "hash, norms, cache path) and the strengths",
    "responses/": "openai backend only: `responses.jsonl`, every server reply keyed by a hash "
                  "of its request (resume never asks twice; `traitlab run --replay` answers "
                  "from it with no server), and `backend.json`, the client settings (no key)",
    "cell.json": "sweep cells only: sweep name, cell id, params, seed, node, attempt",
    ".lock": "locked (`flock`) by the process writing the run, which wrote its pid; a "
             "second writer is refused",
}
"""Files of ``runs/<scenario>/<utc-time>-<id>/``."""

MANIFEST_KEYS: dict[str, str] = {
    "traitlab": "package version that wrote the run",
    "run_id": "the directory's name (`<utc-time>-<id>`)",
    "scenario": "the scenario's `name`",
    "spec_hash": "hash of the resolved scenario; resume refuses a mismatch",
    "seed": "the run's seed",
    "replicas": "number of lock-stepped replicas",
    "run_config": "every setting of the run (`RunConfig`), enough to resume it",
    "model": "backend, model id, weights hash, dtype, device",
    "design": "conditioning of the population and each cohort (`scripted` for rule policies), "
              "steering strength, and each choice and sanction stage's decision rule "
              "(`sample` from the option probabilities, or `argmax`)",
    "packages": "versions of torch, transformers, mesa, networkx, pydantic, polars, numpy, ray",
    "git_commit": "commit of the TraitLab checkout, if it is one",
    "command": "the command line",
    "status": "`running`, `complete`, `failed` or `interrupted`",
    "started_at": "UTC start time (ISO 8601)",
    "finished_at": "UTC end time, null while running",
    "steps_completed": "steps recorded so far",
    "events": "event rows recorded so far",
    "tokens": "prompt, new and cached (prefix-reused) token counts",
    "failures": "requests that failed after the backend's retries",
    "retries": "batches the backend retried",
    "timings": "`wall_s`, `model_s` and the wall time of every step",
    "resumes": "one entry per resume: from which step, the previous status, when, command",
    "surveys": "survey stages only: shard folder, survey stage ids, survey rows",
    "server": "openai backend only: base URL (no credentials), model the server reports, "
              "what it offers (`capabilities`: scoring strategy, log-probs, guided choice, "
              "traitlab serve), its determinism claim, the API key's variable name (never "
              "the key) and whether the run was a replay",
    "cost_usd": "openai backend with prices only: estimated cost so far (US dollars) from "
                "the server's token counts; stored responses a resume reuses cost nothing",
    "overrides": "`--set` only: the dotted paths set on top of the scenario file, with their "
                 "values (`scenario.yaml` holds the result)",
    "parent": "forks only (`traitlab fork`): `run_dir` (the parent's directory, relative to "
              "the fork where possible), `run_id`, `step` (the fork's records up to it are the "
              "parent's, read from there, never copied) and `spec_hash` (the parent's); "
              "progress fields count the shared history too",
    "fork": "forks only: `seed` (`keep` or `new`), `continuation` and `arm` (in a fork set), "
            "`draw_seeds` (per replica: the seed of the continuation's groups, request seeds "
            "and choices; the parent's with `keep`), the `interventions` applied at the fork "
            "point and the `interventions_file`",
}
"""Top-level keys of ``manifest.json``."""

CHECKPOINT_KEYS: dict[str, str] = {
    "format": "checkpoint format version (3: a chain of per-step documents; a run with the "
              "single `checkpoint.json` of format 2 cannot be verified and is refused)",
    "spec_hash": "must equal the manifest's",
    "step": "the step the document ends; on resume, shards and documents of later steps are "
            "deleted",
    "kind": f"`full` (step 0 and every {SNAPSHOT_EVERY}th step: the whole engine state) or "
            "`delta` (what the step changed)",
    "prev": "the previous document's `sha256` (null at step 0, or at the first step of a run "
            "started from another run's state): the chain is tamper-evident",
    "engine": "`full`: step counter, executor counters and each replica's flow position, "
              f"grouping cache and agents' recent memory (the last {MEMORY_LIMIT} moments), "
              "score and choices; `delta`: the engine and replica keys whole, and only the "
              "agents that changed, with only their new or changed memory moments "
              "(`sim/records/delta.py`)",
    "progress": "the manifest's progress fields at that step (without per-step times)",
    "step_seconds": "wall time of the steps since the previous document",
    "settings": "seed, replicas and run_config the run was recorded with; resume refuses a "
                "manifest that says otherwise",
    "files": "sha256 of every file committed since the previous document (scenario, agents, "
             "network, the step's shards); resume checks the union and refuses a missing, "
             "changed or unlisted one",
    "sha256": "hash of the rest of the document; resume refuses an edited checkpoint",
}
"""Top-level keys of a ``checkpoints/step-NNNNNN.json`` document."""

SWEEP_FILES: dict[str, str] = {
    "sweep.json": "the sweep's manifest: run config, max retries, status, nodes, every "
                  "invocation, and per cell its id, params, seed, status, node, attempts, "
                  "errors, timings and event count",
    "sweep.yaml": "the sweep file as given",
    "<cell-id>/": "one complete run directory per finished cell, plus its `cell.json`",
    ".staging/": "cells in progress, with each worker's `worker.json` (pid, node, cells); "
                 "never read, cleared at start and end",
}
"""Files of ``<out>/<sweep-name>/``."""

FORKSET_FILES: dict[str, str] = {
    "forkset.json": "`kind: forkset`, `parent` (as a fork's, relative to the fork set), "
                    "`step`, `seed`, `replicas`, `overrides`, `interventions_file`, and "
                    "`forks`: per fork its `arm` (`changed` or `unchanged`), `continuation` "
                    "and `dir`",
    "changed-NN/": "continuation NN with the change: a fork directory (a run directory with "
                   "`parent`)",
    "unchanged-NN/": "continuation NN without it, with the same draw seeds as `changed-NN`",
}
"""Files of a fork set, ``<out>/<scenario>/<utc-time>-forkset-<id>/`` (``fork --replicas``)."""

_INTRO = """\
# Records

Generated by `python -m sim.records.doc` from `sim/records/schemas.py` and
`sim/records/doc.py`; `tests/test_docs.py` fails when this file and the generator differ.

A run writes one directory, `runs/<scenario>/<utc-time>-<id>/`. Every file appears atomically
(a temporary file, then a rename), so a reader never sees a partial file. After each step the
recorder writes the step's event shard (and survey shard), then the step's checkpoint
document `checkpoints/step-NNNNNN.json`, then `manifest.json`.
Tables carry no run id, so two runs of one seed are byte-comparable;
`analysis.load_run` adds a `run_id` column (the directory's name), and `analysis.load_sweep`
adds `cell_id`, `seed` and one column per swept dotted path.
"""


_CHECKPOINTS = f"""\
One document per step, written atomically after the step's shards, whose size depends on what
the step did, not on how long the run has been. The state at any step is one `full` document
plus at most {SNAPSHOT_EVERY - 1} `delta`s away. Read it with
`sim.records.checkpoint.engine_state_at(run_dir, step)` (the `Engine.state_dict` at the end of
`step`, each document read checked for its hash and its link), or reopen the run there with
`sim.run.reopen.reopen(run_dir, step)` (an engine in that state; nothing is written).
`read_checkpoint(run_dir, spec_hash, step)` reads and verifies the whole chain up to `step`
(what resume uses: the union of `files`, the progress with every step's time). A fork's
first document (full, `prev` null) has one more key, `parent`: the manifest's `parent` plus
`files`, the sha256 of each of the parent's own shards up to the fork step; reading, resuming
or forking the fork refuses a parent shard missing, changed or added since. Keys of each
document:"""


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _files(title: str, files: dict[str, str]) -> list[str]:
    return [f"## {title}", "", *_table(("file", "what"), [(f"`{k}`", v)
                                                         for k, v in files.items()]), ""]


def _columns(name: str, path: str, schema: dict[str, Any], docs: dict[str, str]) -> list[str]:
    rows = [(f"`{col}`", str(dtype), docs[col]) for col, dtype in schema.items()]
    return [f"### {name}: `{path}`", "", *_table(("column", "type", "meaning"), rows), ""]


def render() -> str:
    """The whole of ``docs/records.md``.

    Raises:
        KeyError: if a schema column has no description in ``COLUMN_DOCS``.
    """
    lines = [_INTRO]
    lines += _files("Run directory", RUN_FILES)
    lines += ["## Tables", ""]
    for name, (path, schema) in TABLES.items():
        lines += _columns(name, path, schema, COLUMN_DOCS[name])
    lines += ["## manifest.json", "",
              *_table(("key", "meaning"), [(f"`{k}`", v) for k, v in MANIFEST_KEYS.items()]),
              ""]
    lines += ["## checkpoints/", "", _CHECKPOINTS, "",
              *_table(("key", "meaning"), [(f"`{k}`", v) for k, v in CHECKPOINT_KEYS.items()]),
              ""]
    lines += _files("Sweep directory: `<out>/<sweep-name>/`", SWEEP_FILES)
    lines += _files("Fork set: `<out>/<scenario>/<utc-time>-forkset-<id>/`", FORKSET_FILES)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    """Print the document (``python -m sim.records.doc > docs/records.md``)."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
