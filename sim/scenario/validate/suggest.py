"""'Did you mean' suggestions for misspelt names, shared by every check and the loader."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

from sim.errors import ScenarioError

__all__ = ["Problems", "did_you_mean"]

Problems = Iterator[ScenarioError]
"""What every check yields: each problem found, located by its dotted ``field``."""


def did_you_mean(value: str, choices: Sequence[str]) -> str:
    """``"did you mean 'x'? "`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""
