"""Roles: who plays which part, what each member privately knows, and role alternation.

Assignment is deterministic given the run's RNG stream: explicit ``agents`` lists first,
then ``count`` and ``fraction`` roles in file order over the remaining agents in a seeded
random order. Agents left over have no role. Private values are drawn per agent from the
same stream, after assignment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.scenario.spec import RoleSpec

__all__ = ["assign_roles", "draw_private", "role_in_round"]


def assign_roles(roles: Sequence[RoleSpec], size: int, rng: np.random.Generator
                 ) -> list[str | None]:
    """The role of every agent (``None`` for agents in no role).

    Raises:
        ValueError: if explicit lists overlap or leave too few agents (checked earlier for
            scenarios by :mod:`sim.scenario.validate`).
    """
    out: list[str | None] = [None] * size
    for role in roles:
        for i in role.agents or []:
            if out[i] is not None:
                raise ValueError(f"agent {i} is in roles {out[i]!r} and {role.name!r}")
            out[i] = role.name
    free = [int(i) for i in rng.permutation(size) if out[int(i)] is None]
    for role in roles:
        if role.agents is not None:
            continue
        n = role.count if role.count is not None else round((role.fraction or 0.0) * size)
        if n > len(free):
            raise ValueError(f"role {role.name!r} needs {n} agents, {len(free)} are left")
        for i in free[:n]:
            out[i] = role.name
        free = free[n:]
    return out


def draw_private(roles: Sequence[RoleSpec], assigned: Sequence[str | None],
                 rng: np.random.Generator) -> list[dict[str, float]]:
    """Each agent's private values: fixed, or uniform on the ``step`` grid of ``min..max``."""
    by_name = {r.name: r for r in roles}
    out: list[dict[str, float]] = []
    for role_name in assigned:
        values: dict[str, float] = {}
        role = by_name.get(role_name) if role_name is not None else None
        for key, spec in (role.private.items() if role is not None else ()):
            if spec.value is not None:
                values[key] = float(spec.value)
                continue
            assert spec.min is not None and spec.max is not None
            steps = int((spec.max - spec.min) / spec.step + 1e-9)
            values[key] = round(spec.min + spec.step * int(rng.integers(steps + 1)), 6)
        out.append(values)
    return out


def role_in_round(base: str | None, round_: int, roles: Sequence[RoleSpec],
                  alternate: bool) -> str | None:
    """An agent's role in a round.

    With ``alternate`` the first two roles swap every even round (and so does everything a
    role brings: prompt, actors, formulas; private values stay with the agent).
    """
    if not alternate or base is None or len(roles) < 2 or round_ % 2:
        return base
    first, second = roles[0].name, roles[1].name
    return second if base == first else first if base == second else base
