"""Named points of a run where a caller may step in (fault tests kill or fail a run there).

The engine and the recorder call ``hooks.at(point, step)`` at each point; the default hooks do
nothing. Tests pass their own object (a SIGKILL at ``after-shard`` of step 3, a cell that
raises before its first step) to :func:`sim.run.runner.run_scenario`, :func:`~sim.run.runner.
resume_run` or a sweep, so no fault code ships in the loop itself.

Points, in the order one step meets them:

* ``before-step``: an engine is about to plan the step (nothing of it exists yet);
* ``in-wave``: a wave of the step came back from the executor, the plans have not seen it;
* ``after-shard``: the step's shards are written, its checkpoint is not;
* ``after-checkpoint``: the checkpoint is written, the manifest is not;
* ``finish``: the final manifest is in its temporary file, not yet renamed into place.
"""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["NO_HOOKS", "NoHooks", "Point", "RunHooks"]

Point = Literal["before-step", "in-wave", "after-shard", "after-checkpoint", "finish"]


class RunHooks(Protocol):
    """Called at every :data:`Point` of a run; an exception raised there fails the run."""

    def at(self, point: Point, step: int) -> None:
        """The run reached ``point`` of step ``step`` (1-based)."""
        ...


class NoHooks:
    """The hooks of every run that is given none: each point passes."""

    def at(self, point: Point, step: int) -> None:
        """Nothing happens."""


NO_HOOKS = NoHooks()
