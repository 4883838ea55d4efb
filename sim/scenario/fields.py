"""Shared building blocks of the scenario models: the strict base and constrained scalars."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Conditioning", "Formula", "Name", "Slug", "Strict", "Unit"]

Slug = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Formula = Annotated[str, Field(min_length=1, max_length=1000)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]


class Strict(BaseModel):
    """Base of every spec model: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Conditioning = Literal["none", "prompt", "steering", "both"]
"""How personas condition the model: ``none`` (name only, the control), ``prompt`` (persona
text with graded trait markers), ``steering`` (name only plus an activation-steering vector
from the persona's traits), ``both``."""
