"""Analyzers of TraitLab: functions over polars frames of recorded runs.

Public API (importable from the package root, resolved lazily): :func:`load_run` and
:func:`load_sweep` read run and sweep directories into polars frames (:class:`Run`,
:class:`Sweep`). The analyzers are functions in the submodules, imported on demand:

- ``analysis.stats``: cluster bootstrap over runs, effect sizes, OLS helpers.
- ``analysis.psychometrics``: questionnaire scoring (one path), validity, response quality.
- ``analysis.reliability``: Cronbach's alpha and McDonald's omega.
- ``analysis.stability``: test-retest ICCs over checkpoints.
- ``analysis.drift``: trait scores, trajectories, reliable change, contagion, drift tests.
- ``analysis.text``: tokenizer, LSM-style word lists, TF-IDF + truncated SVD.
- ``analysis.alignment``: LSM, rLSM, lexical and semantic alignment against surrogates.
- ``analysis.norms``: cooperation, conditional cooperation, entropy, norm violations.
- ``analysis.naming``: naming-game consensus, success, convergence, tipping points, bias.
- ``analysis.report``: the analyzers that apply to a run, as tables and an HTML report.
- ``analysis.synthetic``, ``analysis.synthetic_naming``: seeded generators of data with
  known answers.

Definitions and references: ``docs/measurement.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_exports

_PUBLIC: dict[str, str] = {
    "load_run": "analysis.io",
    "load_sweep": "analysis.io",
    "Run": "analysis.io",
    "Sweep": "analysis.io",
}

__all__ = ["Run", "Sweep", "load_run", "load_sweep"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from analysis.io import Run, Sweep, load_run, load_sweep


__getattr__, __dir__ = lazy_exports("analysis", _PUBLIC, globals())
