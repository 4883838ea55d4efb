"""The estimated cost of a run on a priced server, and ``max_cost``, which stops it in time.

The cost comes from the backend's token counts at the configured prices
(:meth:`sim.backends.openai.OpenAIBackend.estimated_cost`); responses a resumed run finds in
its store cost nothing again. Before each step the next step is assumed to cost what the last
one did; if that would cross the budget, the run stops, marked ``interrupted``, and can be
resumed with a larger ``--max-cost``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.backends.openai import OpenAIBackend
from sim.errors import BudgetReached

if TYPE_CHECKING:
    from sim.engine.loop import Engine, StepReport
    from sim.records.recorder import Recorder

__all__ = ["CostMeter"]


class CostMeter:
    """Writes ``cost_usd`` into the manifest each step and enforces ``max_cost``.

    Args:
        estimate: the backend's cost so far in this process (``None``: no prices).
        recorder: the run's recorder (the cost before a resume is in its manifest).
        max_cost: the budget in US dollars (``None``: no limit).
    """

    def __init__(self, estimate: Callable[[], float | None], recorder: Recorder,
                 max_cost: float | None) -> None:
        self.estimate = estimate
        self.recorder = recorder
        self.max_cost = max_cost
        self.before = float(recorder.manifest.get("cost_usd") or 0.0)
        self.last = self.before

    @classmethod
    def attach(cls, backend: Any, recorder: Recorder, engine: Engine,
               max_cost: float | None) -> CostMeter | None:
        """Hook a meter into ``engine`` (around its recording callback) if prices are set."""
        if not isinstance(backend, OpenAIBackend) or backend.estimated_cost() is None:
            return None  # only a priced server backend has a cost
        meter = cls(backend.estimated_cost, recorder, max_cost)
        recorder.annotate(cost_usd=meter.before)
        engine.callbacks.insert(0, meter.note)  # before the recorder writes the step
        engine.callbacks.insert(2, meter.check(engine))  # after it
        return meter

    def spent(self) -> float:
        """Estimated cost of the whole run so far."""
        return self.before + float(self.estimate() or 0.0)

    def note(self, _report: StepReport) -> None:
        """Put the cost so far into the manifest the step's record writes."""
        self.recorder.annotate(cost_usd=round(self.spent(), 6))

    def check(self, engine: Engine) -> Callable[[StepReport], None]:
        """The callback that stops ``engine`` before a step that would cross the budget."""

        def check(_report: StepReport) -> None:
            spent = self.spent()
            step_cost, self.last = spent - self.last, spent
            if self.max_cost is not None and engine.running \
                    and spent + step_cost > self.max_cost:
                raise BudgetReached(self.recorder.path, spent, step_cost, self.max_cost)

        return check
