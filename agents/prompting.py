"""Prompt conditioning: persona text with graded trait intensity, in paraphrased templates.

A persona's Big Five scores (in [0, 1]) map to graded qualifiers (``somewhat``, ``very``,
``extremely``; nothing near the middle) and to the adjectives of the high or low pole. Three
paraphrase templates say the same thing in different words, so that a study can tell the
persona's content from one wording's quirks. MBTI types add an axis description per letter
(written for this project), graded by the axis clarity.

Example:
    >>> from agents.persona import BigFive, Persona
    >>> p = Persona(name="Ada", big_five=BigFive(0.9, 0.5, 0.1, 0.5, 0.5))
    >>> persona_prompt(p, template=0).startswith("You are Ada.")
    True
"""

from __future__ import annotations

from agents.persona import MBTI_AXES, TRAIT_POLES, TRAITS, Persona, intensity_word

__all__ = ["MBTI_DESCRIPTIONS", "PERSONA_TEMPLATES", "TRAIT_POLES", "persona_prompt",
           "trait_sentence"]


# One description per MBTI letter, written for this project.
MBTI_DESCRIPTIONS: dict[str, str] = {
    "E": "you draw energy from other people and think out loud",
    "I": "you draw energy from time alone and think before you speak",
    "S": "you trust concrete facts and hands-on experience",
    "N": "you look for patterns, possibilities and the big picture",
    "T": "you decide with logic and consistent principles",
    "F": "you decide with empathy and what matters to the people involved",
    "J": "you like plans, closure and things settled in advance",
    "P": "you like to keep options open and adapt as you go",
}

# Three paraphrase templates: (opening, graded sentence, middle sentence, joiner).
PERSONA_TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    ("You are {name}.", "You are {word} {pole}.",
     "You are average in {trait}: neither {high} nor {low}.", " "),
    ("Your name is {name}. This is your personality:", "- {Word} {pole}.",
     "- Middling in {trait}, neither {high} nor {low}.", "\n"),
    ("Play the role of {name}, a person described as follows.",
     "{name} is {word} {pole}.",
     "{name} is about average in {trait}, neither {high} nor {low}.", " "),
)

_CLARITY_WORDS = ((0.25, "slightly"), (0.6, "clearly"), (1.01, "strongly"))


def trait_sentence(trait: str, score: float, *, template: int = 0, name: str = "") -> str:
    """One sentence describing ``trait`` at ``score`` in paraphrase ``template``."""
    _opening, graded, middle, _join = PERSONA_TEMPLATES[template % len(PERSONA_TEMPLATES)]
    high, low = TRAIT_POLES[trait]
    word = intensity_word(score)
    if word is None:
        return middle.format(trait=trait, high=high.split(",")[0], low=low.split(",")[0],
                             name=name)
    pole = high if score > 0.5 else low
    return graded.format(word=word, Word=word.capitalize(), pole=pole, name=name)


def _mbti_sentence(persona: Persona) -> str | None:
    if persona.mbti is None:
        return None
    parts = []
    for (_first, _second, _trait, _sign), letter, clarity in zip(
        MBTI_AXES, persona.mbti.type, persona.mbti.clarity, strict=True
    ):
        word = next(w for bound, w in _CLARITY_WORDS if clarity < bound)
        parts.append(f"{word}, {MBTI_DESCRIPTIONS[letter]}")
    return f"Your type is {persona.mbti.type}: " + "; ".join(parts) + "."


def persona_prompt(persona: Persona, *, template: int = 0,
                   traits: tuple[str, ...] = TRAITS) -> str:
    """Render ``persona`` as system-prompt text in paraphrase ``template`` (0, 1 or 2).

    Args:
        persona: who the agent is.
        template: index into :data:`PERSONA_TEMPLATES` (taken modulo their number).
        traits: the traits to describe (default all five, in canonical order).
    """
    opening, _g, _m, join = PERSONA_TEMPLATES[template % len(PERSONA_TEMPLATES)]
    scores = persona.big_five.as_dict()
    lines = [opening.format(name=persona.name)]
    lines += [trait_sentence(t, scores[t], template=template, name=persona.name) for t in traits]
    mbti = _mbti_sentence(persona)
    if mbti:
        lines.append(mbti)
    if persona.background:
        lines.append(persona.background)
    return join.join(lines)
