"""The commons scenario with scripted fishers and a declared quota, for the view's tests.

Three greedy and two sustainable fishers (as in ``tests/test_commons.py``): greedy ones take
h = floor(lake / 5) (at most ``quota``), sustainable ones floor(h / 2). Without the quota the
lake after months 1-4 is 40, 16, 10, 4 (collapse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["QUOTA", "commons_fleet"]

ROOT = Path(__file__).resolve().parents[2]
QUOTA = "From now on nobody may catch more than 2 tonnes a month."


def commons_fleet(tmp: Path, *, at_round: int = 12, rounds: int = 12) -> Path:
    """The scenario file: the fleet, and a quota of 2 tonnes declared for ``at_round``."""
    raw: dict[str, Any] = yaml.safe_load((ROOT / "scenarios" / "commons.yaml").read_text())
    raw["rounds"] = rounds
    raw["population"]["cohorts"] = [{"count": 3, "policy": {"name": "greedy"}},
                                    {"count": 2, "policy": {"name": "sustainable"}}]
    raw["interventions"] = [{"id": "quota", "at": {"round": at_round}, "announce": QUOTA,
                             "set": {"params.quota": 2}}]
    path = tmp / f"commons-{at_round}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
