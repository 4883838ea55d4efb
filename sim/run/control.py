"""Pause, step and stop a running simulation from another thread (the browser view's controls).

A :class:`RunControl` is a :class:`~sim.records.hooks.RunHooks` object: pass it as ``hooks`` to
:func:`~sim.run.runner.run_scenario` or :func:`~sim.run.runner.resume_run`. It acts only at
``before-step``, the point where the previous step is fully recorded (shards, checkpoint,
manifest) and nothing of the next one exists yet, so it never changes what is recorded:

* **pause**: the run waits before its next step (the current one finishes and is committed);
* **step**: while paused, exactly one more step runs, then the run waits again;
* **resume**: the run goes on;
* **stop**: the run ends before its next step as ``interrupted``, resumable with
  ``traitlab run --resume``, exactly like Ctrl-C between two steps;
* **intervene**: one of the scenario's declared interventions is queued, and the run thread
  hands it to :meth:`~sim.engine.loop.Engine.intervene` at the next ``before-step``, so it
  applies at the start of that step and is recorded like any other intervention (an
  ``intervention`` event row of that step). The web thread never touches the engine.

Any other hooks (fault injection in tests) are called first, at every point.

Example:
    >>> control = RunControl()                                      # doctest: +SKIP
    >>> threading.Thread(target=run_scenario, args=(path, config),  # doctest: +SKIP
    ...                  kwargs={"hooks": control}).start()
    >>> control.pause(); control.step(); control.stop()              # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal

from sim.records.hooks import NO_HOOKS, Point, RunHooks

if TYPE_CHECKING:
    from sim.engine.loop import Engine

__all__ = ["ACTIONS", "RunControl", "StopRequested"]

Action = Literal["pause", "step", "resume", "stop", "intervene"]
ACTIONS: tuple[Action, ...] = ("pause", "step", "resume", "stop", "intervene")
_BUTTONS = ("pause", "step", "resume", "stop")  # the page draws one button per intervention
_POLL_S = 0.2  # how often a paused run wakes up (so Ctrl-C reaches the main thread)


class StopRequested(KeyboardInterrupt):
    """Raised at ``before-step`` after :meth:`RunControl.stop`.

    The runner marks the run ``interrupted`` as it does for Ctrl-C.
    """


class RunControl:
    """Thread-safe pause / step / resume / stop of one run, checked between steps.

    Args:
        inner: hooks to call first at every point (default: none).
        paused: start paused, so the run waits before its first step (until step or resume).
    """

    def __init__(self, inner: RunHooks = NO_HOOKS, *, paused: bool = False) -> None:
        self._inner = inner
        self._cond = threading.Condition()
        self._paused = paused
        self._credits = 0  # steps allowed to start while paused
        self._stopping = False
        self._waiting_at: int | None = None  # the step the run waits before, if it waits
        self._finished = False
        self._engine: Engine | None = None
        self._declared: tuple[str, ...] = ()
        self._queued: list[str] = []  # intervention ids the run thread has not taken yet
        self._applied: list[tuple[str, int]] = []  # (id, step it was handed to the engine for)

    def bind_engine(self, engine: Engine) -> None:
        """Called by the runner with the run's engine: interventions go to it, between steps."""
        with self._cond:
            self._engine = engine
            self._declared = tuple(i.id for i in engine.spec.interventions)

    def at(self, point: Point, step: int) -> None:
        """Hook entry: wait while paused before a step; raise :class:`StopRequested` on stop."""
        self._inner.at(point, step)
        if point != "before-step":
            return
        with self._cond:
            while not self._stopping and self._paused and self._credits == 0:
                self._waiting_at = step
                self._cond.notify_all()
                self._cond.wait(_POLL_S)
            self._waiting_at = None
            if self._stopping:
                self._finished = True
                self._cond.notify_all()
                raise StopRequested(f"stopped before step {step}")
            if self._paused:
                self._credits -= 1
            queued, self._queued = self._queued, []
            engine = self._engine
            self._applied.extend((item, step) for item in queued)
            self._cond.notify_all()
        for item in queued:  # this is the run thread, between two steps
            assert engine is not None, "queued only once an engine is bound"
            engine.intervene(item)

    def apply(self, action: str, intervention: str | None = None) -> dict[str, Any]:
        """Apply one of :data:`ACTIONS` by name; returns :meth:`state`.

        ``intervention``: the id for ``intervene``.

        Raises:
            ValueError: for an unknown action or intervention.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown control action {action!r}; use one of "
                             f"{', '.join(ACTIONS)}")
        if action == "intervene":
            self.intervene(str(intervention))
        else:
            getattr(self, action)()
        return self.state()

    def intervene(self, intervention: str) -> None:
        """Queue a declared intervention for the next step (applied by the run thread).

        Raises:
            ValueError: if the scenario declares no intervention of that id, the run has not
                built its engine yet, or it is stopping.
        """
        with self._cond:
            if self._engine is None:
                raise ValueError("the run has not built its engine yet: try again once it "
                                 "waits before step 1")
            if intervention not in self._declared:
                known = ", ".join(self._declared) or "none declared"
                raise ValueError(f"unknown intervention {intervention!r}; the scenario's: "
                                 f"{known}")
            if self._stopping:
                raise ValueError("the run is stopping: no further step takes an intervention")
            self._queued.append(intervention)
            self._cond.notify_all()

    def pause(self) -> None:
        """Wait before the next step (the current one finishes and is recorded)."""
        with self._cond:
            self._paused, self._credits = True, 0
            self._cond.notify_all()

    def step(self) -> None:
        """Let one more step run, then wait again (pauses first if the run was running)."""
        with self._cond:
            self._paused = True
            self._credits += 1
            self._cond.notify_all()

    def resume(self) -> None:
        """Run on without waiting."""
        with self._cond:
            self._paused, self._credits = False, 0
            self._cond.notify_all()

    def stop(self) -> None:
        """End the run before its next step, as ``interrupted`` (resumable)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def state(self) -> dict[str, Any]:
        """The control's state as JSON data.

        ``paused``, ``stopping``, ``waiting_before`` (the step it waits before, or None),
        ``pending_steps`` (steps allowed while paused), the ``actions`` drawn as buttons, the
        declared ``interventions``, those ``queued`` for the next step and those ``applied``
        (``{"id", "step"}``: handed to the engine before that step).
        """
        with self._cond:
            return {"paused": self._paused, "stopping": self._stopping,
                    "waiting_before": self._waiting_at, "pending_steps": self._credits,
                    "actions": list(_BUTTONS), "interventions": list(self._declared),
                    "queued": list(self._queued),
                    "applied": [{"id": i, "step": s} for i, s in self._applied]}

    def wait_until_waiting(self, timeout_s: float) -> int | None:
        """Block until the run waits before a step (or ``timeout_s`` passes); that step."""
        with self._cond:
            self._cond.wait_for(lambda: self._waiting_at is not None or self._finished,
                                timeout_s)
            return self._waiting_at
