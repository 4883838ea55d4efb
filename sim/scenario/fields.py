"""Shared building blocks of the scenario models: the strict base and constrained scalars."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_MAGNITUDE", "Conditioning", "Formula", "Name", "Number", "Slug", "Strict",
           "Unit"]

MAX_MAGNITUDE = 1e12
"""Largest magnitude of a number written in a scenario (payoffs, params, levels, private
values): formulas combine them, and must stay far from float overflow (see 'Limits' in
docs/architecture.md)."""

Slug = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# Strict: YAML ``true`` is not 1.0 and "0.5" (quoted) is not 0.5; integers are still numbers.
Unit = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_MAGNITUDE,
                                le=MAX_MAGNITUDE)]
Formula = Annotated[str, Field(min_length=1, max_length=1000)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]


class Strict(BaseModel):
    """Base of every spec model: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Conditioning = Literal["none", "prompt", "steering", "both"]
"""How personas condition the model: ``none`` (name only, the control), ``prompt`` (persona
text with graded trait markers), ``steering`` (name only plus an activation-steering vector
from the persona's traits), ``both``."""
