"""What a new query and a cached one have in common, as numbers a scorer can weigh.

Two groups: the embeddings' element-wise agreement (``q * c`` and ``|q - c|``, which
let a trained scorer weigh the dimensions one cosine weighs equally) and a few lexical
signals cosine misses: shared words and content words, length ratio, whether numbers,
capitalized names and negation agree, and whether the question word is the same.
"""

from __future__ import annotations

import re

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
_NAME = re.compile(r"\b[A-Z][a-z]+")
_STOP = frozenset((
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "are", "was", "were",
    "be", "do", "does", "did", "i", "you", "my", "your", "it", "its", "this", "that", "what",
    "how", "why", "which", "who", "when", "where", "can", "could", "should", "would", "will",
    "with", "as", "at", "by", "from", "me", "we", "our",
))  # fmt: skip
_NEGATION = frozenset((
    "not", "no", "never", "dont", "doesnt", "isnt", "cant", "cannot", "wont", "didnt", "arent",
))  # fmt: skip
LEXICAL = (
    "cosine", "cosine_squared", "word_jaccard", "content_jaccard", "length_ratio",
    "numbers_agree", "names_overlap", "same_question_word", "negation_agrees",
    "content_difference", "cosine_x_content_jaccard",
)  # fmt: skip


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("'", ""))


def lexical_features(query: str, cached: str, cosine: float) -> list[float]:
    qw, cw = _words(query), _words(cached)
    qs, cs = set(qw), set(cw)
    qc, cc = qs - _STOP, cs - _STOP
    content_jaccard = len(qc & cc) / max(1, len(qc | cc))
    q_names, c_names = set(_NAME.findall(query[1:])), set(_NAME.findall(cached[1:]))
    names = len(q_names & c_names) / len(q_names | c_names) if q_names | c_names else 1.0
    q_numbers = {w for w in qw if w.isdigit()}
    c_numbers = {w for w in cw if w.isdigit()}
    return [
        cosine,
        cosine * cosine,
        len(qs & cs) / max(1, len(qs | cs)),
        content_jaccard,
        min(len(qw), len(cw)) / max(1, len(qw), len(cw)),
        float(q_numbers == c_numbers),
        names,
        float(qw[:1] == cw[:1]),
        float(bool(qs & _NEGATION) == bool(cs & _NEGATION)),
        min(len(qc ^ cc), 10) / 10,
        cosine * content_jaccard,
    ]


def pair_features(
    queries: list[str], query_vectors: np.ndarray, cached: list[str], cached_vectors: np.ndarray
) -> np.ndarray:
    """One row per (query, cached) pair: ``q * c``, ``|q - c|``, then ``LEXICAL``."""
    q = np.asarray(query_vectors, np.float32)
    c = np.asarray(cached_vectors, np.float32)
    cosines = (q * c).sum(axis=1)
    rows = [
        lexical_features(a, b, float(s)) for a, b, s in zip(queries, cached, cosines, strict=True)
    ]
    lexical = np.array(rows, dtype=np.float32).reshape(len(queries), len(LEXICAL))
    return np.hstack([q * c, np.abs(q - c), lexical])
