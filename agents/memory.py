"""What an agent remembers, and how it is rendered compactly into a prompt."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Memory", "Moment"]

_QUOTE_CHARS = 160


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
    """An agent's history of moments, newest last."""

    moments: list[Moment] = field(default_factory=list)

    def add(self, moment: Moment) -> None:
        """Remember a moment."""
        self.moments.append(moment)

    def state_dict(self) -> list[dict[str, Any]]:
        """Every moment as a JSON-ready dict, oldest first."""
        return [m.to_dict() for m in self.moments]

    def load_state_dict(self, state: list[dict[str, Any]]) -> None:
        """Replace the moments with those of :meth:`state_dict`."""
        self.moments = [Moment.from_dict(m) for m in state]

    def render(self, window: int) -> str:
        """The last ``window`` moments, one per line, or ``nothing yet``."""
        if window <= 0 or not self.moments:
            return "nothing yet"
        return "\n".join(m.render() for m in self.moments[-window:])
