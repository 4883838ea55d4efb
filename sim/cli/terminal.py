r"""Text from agents and users made inert for a terminal.

Agent names, messages, options, stage ids and values quoted in errors are data. Printed raw,
a control byte can clear the screen, retitle the window or reset the terminal, and a rich
markup tag (``[/red]``, ``[link=...]``) can raise ``MarkupError`` or become a clickable link.
Every place the CLI shows such text goes through :func:`visible` (plain ``print``) or
:func:`safe_text` (rich output, which also escapes markup).

>>> print(visible("ok\x1b[2Jbye\x07"))
ok\x1b[2Jbye\x07
>>> print(safe_text("[/red] [link=http://x]"))
\[/red] \[link=http://x]
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl
from rich.markup import escape

if TYPE_CHECKING:
    from analysis.report import Report

__all__ = ["inert_frame", "inert_report", "safe_text", "survive_closed_pipe", "visible"]

# C0 and C1 controls (newline and tab kept: they only move the cursor forward), DEL, and the
# invisible or direction-changing format characters that make shown text lie about itself.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069"
                      "\ufeff\ufff9-\ufffb]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object) -> str:
    """``value`` as text with every control or invisible format character written as an escape."""
    return _CONTROL.sub(_escape_char, str(value))


def safe_text(value: object) -> str:
    """``value`` ready to embed in rich markup: controls made visible, markup tags escaped."""
    return escape(visible(value))


def inert_frame(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with its column names and text cells (also in lists) passed through safe_text.

    For printers that hand cells to rich as markup.
    """
    columns = []
    for name in df.columns:
        col = df[name]
        if col.dtype == pl.String:
            col = col.map_elements(safe_text, return_dtype=pl.String)
        elif col.dtype == pl.List(pl.String):
            col = col.map_elements(lambda xs: [safe_text(x) for x in xs],
                                   return_dtype=pl.List(pl.String))
        columns.append(col.alias(safe_text(name)))
    return pl.DataFrame(columns) if columns else df


def survive_closed_pipe(run: Callable[[], int]) -> int:
    """Run ``run``; exit quietly with 141 if the reader of stdout went away.

    ``traitlab schema | head`` then ends like other tools killed by SIGPIPE, not with a
    traceback.
    """
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141


def _silence_stdout() -> None:
    """Point stdout at devnull so that the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a test's captured stdout has no fd
        pass



def inert_report(report: Report) -> Report:
    """A copy of an analysis report with its title, section names and text cells inert."""
    from dataclasses import replace

    return replace(report, title=safe_text(report.title),
                   tables={safe_text(k): inert_frame(v) for k, v in report.tables.items()},
                   notes={safe_text(k): v for k, v in report.notes.items()})
