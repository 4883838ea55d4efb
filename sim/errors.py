"""One error hierarchy for everything a user can get wrong.

Every message names the object, the bad value, what is allowed and how to fix it. The CLI
maps :class:`TraitLabError` to exit code 2 and prints ``str(error)`` on one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["BackendError", "BudgetReached", "ModelNotFoundError", "RunError", "RunInterrupted",
           "ScenarioError", "ScenarioErrors", "TraitLabError"]


class TraitLabError(Exception):
    """Base class of every error caused by user input or the environment, not by a bug."""


class ScenarioError(TraitLabError):
    """A scenario (or sweep) file is malformed or inconsistent.

    Attributes:
        file: the file the error is in, if known.
        line: 1-based line of the offending node, if known.
        column: 1-based column of the offending node, if known.
        field: dotted path of the offending field (``stages.1.options``), if known.
        value: the offending value, if there is one.
        fix: one sentence saying how to fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        value: object = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.value = value
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [f"{where}:"]
        if self.field:
            parts.append(f"field '{self.field}':")
        parts.append(self.message)
        text = " ".join(parts)
        if self.fix:
            text += f" Fix: {self.fix}"
        return text

    def located(self, *, file: str | None = None, line: int | None = None,
                column: int | None = None) -> ScenarioError:
        """Return a copy of this error with the location filled in where it was missing."""
        return ScenarioError(
            self.message,
            file=self.file or file,
            line=self.line if self.line is not None else line,
            column=self.column if self.column is not None else column,
            field=self.field,
            value=self.value,
            fix=self.fix,
        )


class ScenarioErrors(ScenarioError):
    """Several problems in one file, reported together (the loader sorts them by line).

    Its own attributes are those of the first problem, so code that reads one error still
    works; ``str()`` is one line per problem and the CLI prints each as its own ``error:``.

    Attributes:
        errors: every problem, in order.
    """

    def __init__(self, errors: Sequence[ScenarioError]) -> None:
        if len(errors) < 2:
            raise ValueError("ScenarioErrors holds two or more problems; raise a single one")
        self.errors = tuple(errors)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, line=first.line, column=first.column,
                         field=first.field, value=first.value, fix=first.fix)

    @staticmethod
    def of(errors: Sequence[ScenarioError]) -> ScenarioError:
        """The one error of a single problem, else a :class:`ScenarioErrors` of them all."""
        return errors[0] if len(errors) == 1 else ScenarioErrors(errors)

    def _render(self) -> str:
        return "\n".join(str(error) for error in self.errors)

    def located(self, *, file: str | None = None, line: int | None = None,
                column: int | None = None) -> ScenarioError:
        """Every problem with the location filled in where it was missing."""
        return ScenarioErrors([e.located(file=file, line=line, column=column)
                               for e in self.errors])


class RunError(TraitLabError):
    """A run cannot start or continue (bad run directory, bad flags, missing resources)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; its directory is marked ``interrupted`` and can be resumed.

    Attributes:
        path: the run directory.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path

    @property
    def resume_command(self) -> str:
        """The shell command that continues the run."""
        import shlex

        return f"traitlab run --resume {shlex.quote(str(self.path))}"


class BudgetReached(RunInterrupted):
    """``max_cost`` stopped a run before a step that would cross it; it can be resumed.

    Attributes:
        path: the run directory.
        spent: estimated cost so far (US dollars).
        next_step: estimated cost of the next step (the last step's).
        limit: the budget.
    """

    def __init__(self, path: Path, spent: float, next_step: float, limit: float) -> None:
        super().__init__(path)
        self.spent, self.next_step, self.limit = spent, next_step, limit

    def __str__(self) -> str:
        return (f"stopped before the next step: ${self.spent:.4f} spent, and a step like the "
                f"last (${self.next_step:.4f}) would cross --max-cost ${self.limit:g}. "
                "Records so far are kept.")

    @property
    def resume_command(self) -> str:
        """The shell command that continues the run with a larger budget."""
        higher = max(self.limit * 2, self.spent + 2 * self.next_step)
        return f"{super().resume_command} --max-cost {higher:.2f}"


class BackendError(TraitLabError):
    """A backend cannot serve a request (bad model folder, unsupported request)."""


class ModelNotFoundError(BackendError):
    """The requested model weights are not available locally."""
