"""Text features for alignment: tokenizer, LSM-style word categories, TF-IDF + truncated SVD.

The nine closed-class categories in ``wordlists/lsm_categories.json`` are *LSM-style*: written
for this project from English grammar, not copied from LIWC, so absolute LSM values are not
comparable with LIWC-based studies; differences from surrogate baselines are.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "LSM_CATEGORIES",
    "SemanticSpace",
    "category_counts",
    "fit_semantic_space",
    "load_categories",
    "tokenize",
]

LSM_CATEGORIES: tuple[str, ...] = (
    "personal_pronouns", "impersonal_pronouns", "articles", "prepositions", "auxiliary_verbs",
    "adverbs", "conjunctions", "negations", "quantifiers",
)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_WORDLIST = Path(__file__).parent / "wordlists" / "lsm_categories.json"


def tokenize(text: str | None) -> list[str]:
    """Lowercase word tokens; contractions (``don't``, ``i'm``) stay single tokens.

    Args:
        text: Message text (None gives no tokens).

    Returns:
        Tokens in order.
    """
    if not text:
        return []
    return _TOKEN.findall(text.lower().replace("\u2019", "'").replace("`", "'"))


@lru_cache(maxsize=1)
def load_categories() -> dict[str, frozenset[str]]:
    """The nine LSM-style closed-class categories shipped with the package.

    Returns:
        Mapping category name -> frozen set of lowercase words, in ``LSM_CATEGORIES`` order.
    """
    data = json.loads(_WORDLIST.read_text(encoding="utf-8"))
    missing = [c for c in LSM_CATEGORIES if c not in data]
    if missing:
        raise ValueError(f"{_WORDLIST} lacks categories {missing}; expected {LSM_CATEGORIES}")
    return {c: frozenset(data[c]) for c in LSM_CATEGORIES}


def category_counts(tokens: Sequence[str]) -> np.ndarray:
    """Number of tokens in each LSM-style category.

    Args:
        tokens: Output of :func:`tokenize`.

    Returns:
        Integer array of length 9 in ``LSM_CATEGORIES`` order.
    """
    cats = load_categories()
    return np.array([sum(t in words for t in tokens) for words in cats.values()], dtype=float)


@dataclass(frozen=True)
class SemanticSpace:
    """A fitted TF-IDF + truncated SVD (LSA) space."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    components: np.ndarray
    """``(k, n_terms)`` right singular vectors."""

    def transform(self, texts: Sequence[str | None]) -> np.ndarray:
        """Embed texts as unit vectors in the latent space (zero rows for empty texts).

        Args:
            texts: Documents.

        Returns:
            ``(len(texts), k)`` array with L2-normalised rows.
        """
        x = _tfidf(texts, self.vocabulary, self.idf)
        z = x @ self.components.T
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        return np.divide(z, norm, out=np.zeros_like(z), where=norm > 0)


def _tfidf(texts: Sequence[str | None], vocab: dict[str, int], idf: np.ndarray) -> np.ndarray:
    x = np.zeros((len(texts), len(vocab)))
    for i, t in enumerate(texts):
        for w, c in Counter(tokenize(t)).items():
            j = vocab.get(w)
            if j is not None:
                x[i, j] = 1.0 + np.log(c)
    x *= idf
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def fit_semantic_space(
    texts: Sequence[str | None], n_components: int = 50, min_df: int = 1
) -> SemanticSpace:
    """Fit TF-IDF (sublinear tf, smooth idf, L2 rows) and a truncated SVD with numpy.

    ``idf = ln((1 + n) / (1 + df)) + 1``; the SVD keeps the top ``k = min(n_components,
    rank)`` right singular vectors of the TF-IDF matrix, computed from the smaller Gram
    matrix so the cost is ``min(n_docs, n_terms)^3``.

    Args:
        texts: Corpus (typically every message of the runs being analysed).
        n_components: Latent dimensions.
        min_df: Minimum document frequency of a term.

    Returns:
        The fitted :class:`SemanticSpace`.
    """
    docs = [set(tokenize(t)) for t in texts]
    df_count: Counter[str] = Counter()
    for d in docs:
        df_count.update(d)
    terms = sorted(w for w, c in df_count.items() if c >= min_df)
    if not terms:
        raise ValueError("fit_semantic_space got a corpus without tokens")
    vocab = {w: i for i, w in enumerate(terms)}
    n = len(texts)
    idf = np.log((1 + n) / (1 + np.array([df_count[w] for w in terms], float))) + 1.0
    x = _tfidf(texts, vocab, idf)
    if x.shape[0] <= x.shape[1]:
        u, s2, _ = np.linalg.svd(x @ x.T, hermitian=True)
        keep = s2 > 1e-10 * max(s2.max(), 1e-300)
        u, s = u[:, keep], np.sqrt(s2[keep])
        vt = (x.T @ u / s).T
    else:
        _, s2, vt = np.linalg.svd(x.T @ x, hermitian=True)
        vt = vt[s2 > 1e-10 * max(s2.max(), 1e-300)]
    return SemanticSpace(vocab, idf, vt[: min(n_components, vt.shape[0])])
