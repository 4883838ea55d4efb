"""What an agent remembers, and how it is rendered compactly into a prompt."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["MEMORY_LIMIT", "Memory", "Moment"]

_QUOTE_CHARS = 160
# The most moments any prompt renders (a stage's ``memory`` is at most 100). Older moments
# can never reach a prompt again, so they are dropped: an agent's state stays bounded however
# long the run, and so does the cost of checkpointing it.
MEMORY_LIMIT = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Moment:
    """One remembered event: a decision round, a conversation or an announcement.

    ``announced``: the text of a game master's announcement (an intervention's); the moment's
    ``stage`` is then the intervention's id.
    """

    round: int
    stage: str
    partners: tuple[str, ...]
    my_choice: str | None = None
    their_choices: tuple[str, ...] = ()
    payoff: float | None = None
    matched: bool | None = None
    said: str | None = None
    heard: tuple[str, ...] = ()
    announced: str | None = None

    def render(self) -> str:
        """One line, e.g. ``Round 3 (play) with Sage: you chose defect, they chose ...``.

        A coordination round adds ``(match)`` or ``(no match)`` after the choices; an
        announcement reads ``Round 5: the game master announced "..."`` (whole, on one line).
        """
        if self.announced is not None:
            text = " ".join(self.announced.split())
            return f'Round {self.round}: the game master announced "{text}".'
        who = ", ".join(self.partners) or "nobody"
        line = f"Round {self.round} ({self.stage}) with {who}:"
        if self.my_choice is not None:
            line += f" you chose {self.my_choice}"
            if self.their_choices:
                line += f", they chose {', '.join(self.their_choices)}"
            if self.matched is not None:
                line += " (match)" if self.matched else " (no match)"
            if self.payoff is not None:
                line += f"; you earned {self.payoff:g}"
            line += "."
        if self.said is not None:
            line += f' you said "{_clip(self.said)}"'
            if self.heard:
                line += f'; they said "{_clip(self.heard[-1])}"'
            line += "."
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples become lists; ``announced`` only when set)."""
        out = {name: getattr(self, name) for name in _FIELD_NAMES
               if name != "announced" or self.announced is not None}
        for name in _TUPLE_FIELDS:
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Moment:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


_FIELD_NAMES = tuple(f.name for f in fields(Moment))
_TUPLE_FIELDS = ("partners", "their_choices", "heard")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


@dataclass(slots=True)
class Memory:
    """An agent's recent moments, newest last: the last :data:`MEMORY_LIMIT` of ``total``.

    Attributes:
        moments: the moments kept, oldest first.
        total: how many moments were ever remembered (the global index of the next one).
    """

    moments: list[Moment] = field(default_factory=list)
    total: int = 0
    # id -> (moment, its dict): a moment is frozen, so its dict is built once, not at every
    # checkpoint (the moment is kept with it so that an id is never mistaken after reuse).
    _dicts: dict[int, tuple[Moment, dict[str, Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def add(self, moment: Moment) -> None:
        """Remember a moment (forgetting the oldest beyond :data:`MEMORY_LIMIT`)."""
        self.moments.append(moment)
        self.total += 1
        if len(self.moments) > MEMORY_LIMIT:
            del self.moments[0]

    def state_dict(self) -> dict[str, Any]:
        """``{"total": n, "moments": [...]}``: the kept moments as JSON-ready dicts.

        A moment's dict is the same object at every call while the moment is kept: read it,
        never change it.
        """
        known, dicts, out = self._dicts, {}, []
        for moment in self.moments:
            hit = known.get(id(moment))
            data = hit[1] if hit is not None and hit[0] is moment else moment.to_dict()
            dicts[id(moment)] = (moment, data)
            out.append(data)
        self._dicts = dicts
        return {"total": self.total, "moments": out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the moments with those of :meth:`state_dict`."""
        self.moments = [Moment.from_dict(m) for m in state["moments"]]
        self.total = int(state["total"])

    def render(self, window: int) -> str:
        """The last ``window`` moments, one per line, or ``nothing yet``."""
        if window <= 0 or not self.moments:
            return "nothing yet"
        return "\n".join(m.render() for m in self.moments[-window:])
