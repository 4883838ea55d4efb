"""Text features for alignment: tokenizer, LSM-style word categories, TF-IDF + truncated SVD.

The nine closed-class categories in ``wordlists/lsm_categories.json`` are *LSM-style*: written
for this project from English grammar, not copied from LIWC, so absolute LSM values are not
comparable with LIWC-based studies; differences from surrogate baselines are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

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
    """A fitted TF-IDF (scikit-learn's ``TfidfVectorizer``) + truncated SVD (LSA) space."""

    vectorizer: TfidfVectorizer
    components: np.ndarray
    """``(k, n_terms)`` right singular vectors."""

    @property
    def vocabulary(self) -> dict[str, int]:
        """Term -> column of the TF-IDF matrix (terms in alphabetical order)."""
        return dict(self.vectorizer.vocabulary_)

    @property
    def idf(self) -> np.ndarray:
        """Inverse document frequency per term: ``ln((1 + n) / (1 + df)) + 1``."""
        return np.asarray(self.vectorizer.idf_)

    def transform(self, texts: Sequence[str | None]) -> np.ndarray:
        """Embed texts as unit vectors in the latent space (zero rows for empty texts).

        Args:
            texts: Documents.

        Returns:
            ``(len(texts), k)`` array with L2-normalised rows.
        """
        x = self.vectorizer.transform([t or "" for t in texts])
        z = np.asarray(x @ self.components.T)
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        return np.divide(z, norm, out=np.zeros_like(z), where=norm > 0)


_EXACT_SVD = 2000  # corpora whose smaller side is at most this get an exact SVD


def fit_semantic_space(
    texts: Sequence[str | None], n_components: int = 50, min_df: int = 1
) -> SemanticSpace:
    """Fit TF-IDF (sublinear tf, smooth idf, L2 rows) and a truncated SVD with scikit-learn.

    ``tf = 1 + ln(count)``, ``idf = ln((1 + n) / (1 + df)) + 1`` (``TfidfVectorizer`` with
    :func:`tokenize`, ``sublinear_tf``, ``smooth_idf``); the SVD keeps the top ``k =
    min(n_components, rank)`` right singular vectors of the TF-IDF matrix: exact (LAPACK) for
    small corpora, scikit-learn's randomized ``TruncatedSVD`` (fixed seed) for large ones.

    Args:
        texts: Corpus (typically every message of the runs being analysed).
        n_components: Latent dimensions.
        min_df: Minimum document frequency of a term.

    Returns:
        The fitted :class:`SemanticSpace`.
    """
    vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None,
                                 sublinear_tf=True, smooth_idf=True, norm="l2", min_df=min_df)
    try:
        x = vectorizer.fit_transform([t or "" for t in texts])
    except ValueError:  # empty vocabulary
        raise ValueError("fit_semantic_space got a corpus without tokens") from None
    if min(x.shape) <= _EXACT_SVD:
        _, s, vt = np.linalg.svd(x.toarray(), full_matrices=False)
        vt = vt[s > 1e-10 * max(float(s.max(initial=0.0)), 1e-300)]
    else:
        k = min(n_components, min(x.shape) - 1)
        vt = TruncatedSVD(k, algorithm="randomized", random_state=0).fit(x).components_
    return SemanticSpace(vectorizer, vt[: min(n_components, vt.shape[0])])
