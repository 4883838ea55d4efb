"""Personality questionnaires as data: items, keys, anchors, licences, and a small loader.

The instrument texts live in JSON files beside this module (package data). The public-domain
IPIP family loads freely; instruments with non-commercial terms (BFI-44, OEJTS 1.2) live in
``restricted/`` with their own ``LICENSE-NOTICE.md`` and load only with
``allow_restricted=True`` (CLI: ``--allow-restricted-instruments``).

Example:
    >>> inst = load_instrument("mini-ipip")
    >>> len(inst.items), inst.scale_min, inst.scale_max
    (20, 1, 5)
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sim.errors import TraitLabError

from .oejts import OEJTS_AXES, score_oejts

__all__ = [
    "BIG_FIVE",
    "OEJTS_AXES",
    "RESTRICTED_FLAG",
    "Instrument",
    "Item",
    "available_instruments",
    "load_instrument",
    "score_oejts",
]

BIG_FIVE: tuple[str, ...] = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
)
"""Trait names used by every Big Five instrument (neuroticism, not emotional stability)."""

RESTRICTED_FLAG = "--allow-restricted-instruments"
"""CLI flag that opts in to restricted instruments."""


@dataclass(frozen=True)
class _Entry:
    file: str
    restricted: bool
    licence: str


_REGISTRY: dict[str, _Entry] = {
    "ipip-50": _Entry("ipip50.json", False, "public domain"),
    "mini-ipip": _Entry("mini_ipip.json", False, "public domain"),
    "ipip-neo-120": _Entry("ipip_neo_120.json", False, "public domain"),
    "bfi-44": _Entry(
        "restricted/bfi44.json",
        True,
        "copyright O. P. John; free for non-commercial research use only",
    ),
    "oejts": _Entry("restricted/oejts.json", True, "CC BY-NC-SA 4.0"),
}


@dataclass(frozen=True)
class Item:
    """One questionnaire item.

    Attributes:
        id: identifier, unique within the instrument (``EXT1``, ``MINI06``, ``NEO009``).
        position: 1-based administration order of the published form.
        text: the statement as administered (first person for IPIP items; ``left | right``
            for bipolar OEJTS pairs).
        trait: Big Five trait the item scores (lower case), or the OEJTS axis (``IE`` ...).
        keyed: +1 when agreement means more of ``trait``, -1 when the item is reverse keyed
            (for OEJTS: the sign of the item in the axis formula).
        facet: facet code (``N1`` ... ``C6``) for IPIP-NEO-120, else None.
        facet_name: facet label (``Anxiety`` ...) for IPIP-NEO-120, else None.
        source_text: the wording exactly as in the source list.
        left: left statement of a bipolar item, else None.
        right: right statement of a bipolar item, else None.
        ipip50_id: the IPIP-50 item this item duplicates (Mini-IPIP), else None.
    """

    id: str
    position: int
    text: str
    trait: str
    keyed: int
    facet: str | None = None
    facet_name: str | None = None
    source_text: str = ""
    left: str | None = None
    right: str | None = None
    ipip50_id: str | None = None

    @property
    def reversed(self) -> bool:
        """True for reverse-keyed items."""
        return self.keyed < 0


@dataclass(frozen=True)
class Instrument:
    """A questionnaire: items in administration order plus the response scale.

    Attributes:
        name: registry name (``ipip-50``, ``mini-ipip``, ``ipip-neo-120``, ``bfi-44``,
            ``oejts``).
        items: items in administration order.
        anchors: option labels for ``scale_min .. scale_max`` in ascending order.
        stem: instruction shown before the items.
        scale_min: lowest response value.
        scale_max: highest response value.
        licence: short licence name (``public domain`` for IPIP).
        source: where the item list and key were taken from.
        restricted: True when the terms forbid shipping it in the default install.
        title: human-readable title.
        kind: ``likert`` (one statement per item) or ``bipolar`` (two poles per item).
        citation: reference to cite.
        licence_note: one paragraph on the terms.
        notes: transcription and scoring notes.
    """

    name: str
    items: tuple[Item, ...]
    anchors: tuple[str, ...]
    stem: str
    scale_min: int
    scale_max: int
    licence: str
    source: str
    restricted: bool
    title: str = ""
    kind: str = "likert"
    citation: str = ""
    licence_note: str = ""
    notes: tuple[str, ...] = ()

    @property
    def traits(self) -> tuple[str, ...]:
        """Traits (or axes) scored by the instrument, in order of first appearance."""
        return tuple(dict.fromkeys(item.trait for item in self.items))

    @property
    def midpoint(self) -> float:
        """Middle of the response scale (3.0 on 1..5)."""
        return (self.scale_min + self.scale_max) / 2

    def items_for(self, trait: str) -> tuple[Item, ...]:
        """Return the items scoring ``trait``.

        Args:
            trait: trait or axis name.

        Raises:
            TraitLabError: if the instrument does not score ``trait``.
        """
        found = tuple(item for item in self.items if item.trait == trait)
        if not found:
            raise TraitLabError(
                f"instrument '{self.name}' has no items for trait '{trait}'; "
                f"it scores {', '.join(self.traits)}."
            )
        return found

    def item(self, item_id: str) -> Item:
        """Return the item with id ``item_id``.

        Raises:
            TraitLabError: if there is no such item.
        """
        for item in self.items:
            if item.id == item_id:
                return item
        raise TraitLabError(f"instrument '{self.name}' has no item '{item_id}'.")

    def reverse(self, value: float) -> float:
        """Reverse-key a response: ``scale_min + scale_max - value``."""
        return self.scale_min + self.scale_max - value

    def keys(self) -> dict[str, tuple[str, int]]:
        """Scoring key as ``{item_id: (trait, keyed)}``."""
        return {item.id: (item.trait, item.keyed) for item in self.items}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def available_instruments(allow_restricted: bool = False) -> list[str]:
    """List the instrument names that :func:`load_instrument` accepts.

    Args:
        allow_restricted: include restricted instruments whose data files are present.

    Returns:
        Registry names in a fixed order; restricted ones only when opted in.
    """
    root = resources.files(__name__)
    names = []
    for name, entry in _REGISTRY.items():
        if entry.restricted and not allow_restricted:
            continue
        if root.joinpath(entry.file).is_file():
            names.append(name)
    return names


def load_instrument(name: str, *, allow_restricted: bool = False) -> Instrument:
    """Load an instrument by name.

    Args:
        name: ``ipip-50``, ``mini-ipip``, ``ipip-neo-120``; restricted: ``bfi-44``, ``oejts``.
            Case and ``_``/``-`` are ignored.
        allow_restricted: opt in to instruments with non-commercial terms.

    Returns:
        The validated instrument (cached; instances are immutable).

    Raises:
        TraitLabError: unknown name, restricted without opt-in, missing or malformed data.
    """
    key = _normalise(name)
    entry = _REGISTRY.get(key)
    if entry is None:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=1)
        raise TraitLabError(
            f"unknown instrument '{name}'. Fix: "
            + (f"did you mean '{close[0]}'? " if close else "")
            + f"use one of: {', '.join(_REGISTRY)} "
            f"(restricted: {', '.join(n for n, e in _REGISTRY.items() if e.restricted)})."
        )
    if entry.restricted and not allow_restricted:
        raise TraitLabError(
            f"instrument '{key}' is restricted (licence: {entry.licence}); its items are not "
            f"public domain and may be used for non-commercial research only. Fix: pass "
            f"allow_restricted=True to load_instrument, or {RESTRICTED_FLAG} on the command "
            f"line, after reading agents/instruments/restricted/LICENSE-NOTICE.md."
        )
    return _load(key)


@cache
def _load(key: str) -> Instrument:
    entry = _REGISTRY[key]
    path = resources.files(__name__).joinpath(entry.file)
    if not path.is_file():
        raise TraitLabError(
            f"instrument '{key}': data file '{entry.file}' is missing from this install. "
            f"Fix: use an install (or checkout) that ships agents/instruments/{entry.file}."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TraitLabError(f"instrument '{key}': {entry.file} is not valid JSON: {exc}") from exc
    return _build(key, entry, raw)


def _build(key: str, entry: _Entry, raw: dict[str, Any]) -> Instrument:
    def bad(msg: str) -> TraitLabError:
        return TraitLabError(f"instrument '{key}' ({entry.file}): {msg}")

    fields = {f for f in Item.__dataclass_fields__}
    try:
        items = tuple(
            Item(**{k: v for k, v in row.items() if k in fields}) for row in raw["items"]
        )
        inst = Instrument(
            name=raw["name"],
            items=tuple(sorted(items, key=lambda it: it.position)),
            anchors=tuple(raw["anchors"]),
            stem=raw["stem"],
            scale_min=int(raw["scale_min"]),
            scale_max=int(raw["scale_max"]),
            licence=raw["licence"],
            source=raw["source"],
            restricted=bool(raw["restricted"]),
            title=raw.get("title", ""),
            kind=raw.get("kind", "likert"),
            citation=raw.get("citation", ""),
            licence_note=raw.get("licence_note", ""),
            notes=tuple(raw.get("notes", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"malformed data ({exc!r}).") from exc
    if inst.name != key or inst.restricted != entry.restricted:
        raise bad("name or restricted flag disagrees with the registry.")
    if len(inst.anchors) != inst.scale_max - inst.scale_min + 1:
        raise bad("need one anchor label per scale point.")
    if len({it.id for it in inst.items}) != len(inst.items):
        raise bad("item ids are not unique.")
    if [it.position for it in inst.items] != list(range(1, len(inst.items) + 1)):
        raise bad("item positions must be 1..n without gaps.")
    allowed = set(OEJTS_AXES) if inst.kind == "bipolar" else set(BIG_FIVE)
    for it in inst.items:
        if it.keyed not in (1, -1):
            raise bad(f"item {it.id}: keyed must be +1 or -1, got {it.keyed}.")
        if it.trait not in allowed:
            raise bad(f"item {it.id}: trait '{it.trait}' is not one of {sorted(allowed)}.")
        if not it.text.strip():
            raise bad(f"item {it.id}: empty text.")
    return inst
