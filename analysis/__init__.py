"""Analyzers of TraitLab: functions over polars frames of recorded runs.

Submodules (imported on demand, nothing heavy happens at package import):

- ``analysis.stats``: cluster bootstrap over runs, effect sizes, OLS helpers.
- ``analysis.drift``: trait scores, trajectories, reliable change, ICC, contagion, drift tests.
- ``analysis.text``: tokenizer, LSM-style word lists, TF-IDF + truncated SVD.
- ``analysis.alignment``: LSM, rLSM, lexical and semantic alignment against surrogates.
- ``analysis.norms``: cooperation, naming-game consensus, convergence, tipping points.
- ``analysis.synthetic``: seeded generators of data with known answers.
"""

__all__: list[str] = []
