"""Numeric offers and accept / reject acts read out of negotiation messages.

Models write offers in many ways ("I'd take $55", "How about 55.50?", "my final offer is
1,200"). :func:`extract_offer` takes the number nearest after an offer word, else the last
number in the message; :func:`detect_act` reads an explicit acceptance or rejection, with
negations ("I can't accept") read as rejections. A number beyond
:data:`~sim.scenario.fields.MAX_MAGNITUDE` is no offer.
"""

from __future__ import annotations

import re
from typing import Literal

from sim.scenario.fields import MAX_MAGNITUDE

__all__ = ["Act", "detect_act", "extract_offer"]

Act = Literal["accept", "reject"]

_NUMBER = re.compile(r"(?<![\w.])[$€£]?\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
_OFFER_WORDS = re.compile(r"\b(offer|pay|price|take|sell|give|propose|counter|for|at|how about"
                          r"|make it|go with|settle)\b", re.IGNORECASE)
_ACCEPT = re.compile(r"\b(accept(?:ed)?|agreed?|it'?s a deal|you have a deal|sounds good|"
                     r"i'?ll take it)\b|\bdeal[.!]", re.IGNORECASE)
_NEGATED = re.compile(r"\b(not|no|can'?t|cannot|won'?t|don'?t|never|refuse)\b[\w\s']{0,12}"
                      r"\b(accept|agree|deal|take)", re.IGNORECASE)
_REJECT = re.compile(r"\b(reject(?:ed)?|no deal|decline|too (?:high|low|much|little))\b",
                     re.IGNORECASE)


def _numbers(text: str) -> list[tuple[int, float]]:
    out = []
    for m in _NUMBER.finditer(text):
        digits = m.group(1).replace(",", "") + (m.group(2) or "")
        value = float(digits)  # 400 nines read as inf: no price, and no inf in a record
        if value <= MAX_MAGNITUDE:
            out.append((m.start(), value))
    return out


def extract_offer(text: str) -> float | None:
    """The offer a message makes, or ``None`` if it names no number.

    The first number after the last offer word ("offer", "pay", "how about", ...) wins;
    without an offer word, the last number in the message.
    """
    numbers = _numbers(text)
    if not numbers:
        return None
    words = [m.end() for m in _OFFER_WORDS.finditer(text)]
    if words:
        after = [v for pos, v in numbers if pos >= words[-1]]
        if after:
            return after[0]
        before = [v for pos, v in numbers if pos >= words[0]]
        if before:
            return before[-1]
    return numbers[-1][1]


def detect_act(text: str) -> Act | None:
    """``"accept"`` or ``"reject"`` if the message says so explicitly, else ``None``."""
    if _NEGATED.search(text) or _REJECT.search(text):
        return "reject"
    if _ACCEPT.search(text):
        return "accept"
    return None
