"""Example lines printed at the end of each command's ``--help``."""

from __future__ import annotations

__all__ = ["ANALYZE_EXAMPLE", "EPILOG", "RUN_EXAMPLE", "SCHEMA_EXAMPLE", "SHOW_EXAMPLE",
           "VALIDATE_EXAMPLE"]

EPILOG = """examples:
  traitlab run scenarios/prisoners_dilemma.yaml                  # embedded SmolLM2, seed 0
  traitlab run scenarios/prisoners_dilemma.yaml --backend scripted --seed 3 --steps 4
  traitlab validate scenarios/*.yaml
  traitlab schema > scenario.schema.json
  traitlab show runs/prisoners-dilemma/<time>-<id>
  traitlab analyze runs/prisoners-dilemma --html report.html
  traitlab sweep scenarios/sweeps/pd_agreeableness.yaml          # cells on Ray, batched
  traitlab serve --port 8000                                     # an OpenAI-compatible server
"""

RUN_EXAMPLE = """example:
  traitlab run scenarios/prisoners_dilemma.yaml --seed 1 --out runs/
  traitlab run scenarios/prisoners_dilemma.yaml --backend scripted --steps 3
  traitlab run scenarios/prisoners_dilemma.yaml --set rounds=3 --set population.size=8
  traitlab run scenarios/prisoners_dilemma.yaml --model ~/models/my-hf-folder --dtype float32
  traitlab run --resume runs/prisoners-dilemma/20261123T101500Z-1a2b3c   # after a crash
  traitlab run scenarios/prisoners_dilemma.yaml --backend openai --base-url http://127.0.0.1:8000/v1
  traitlab run --replay runs/prisoners-dilemma/20261123T101500Z-1a2b3c   # no server needed
exit codes: 0 done, 2 bad input, 3 stopped by --max-cost (resumable), 130 interrupted
"""
VALIDATE_EXAMPLE = "example:\n  traitlab validate scenarios/*.yaml\n"
SCHEMA_EXAMPLE = ("example:\n"
                   "  traitlab schema > scenario.schema.json   # for YAML editor completion\n")
SHOW_EXAMPLE = ("example:\n"
                 "  traitlab show runs/prisoners-dilemma/20261123T101500Z-1a2b3c --limit 40\n"
                 "  traitlab show runs/prisoners-dilemma/20261123T101500Z-1a2b3c --prompts\n")
ANALYZE_EXAMPLE = """example:
  traitlab run scenarios/prisoners_dilemma.yaml --backend scripted --seed 1 --out runs/
  traitlab analyze runs/prisoners-dilemma/20261123T101500Z-1a2b3c --html report.html
  traitlab analyze runs/prisoners-dilemma      # a sweep: every run below, intervals over runs
"""
