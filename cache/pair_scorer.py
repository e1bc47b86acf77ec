"""The probability that a cached query asks the same as a new one: an L2-regularized
logistic regression over ``pair_features``, trained on labeled pairs.

One cosine threshold serves only the near-identical paraphrases at a low false-hit
rate; weighing the embedding's dimensions and a few lexical signals separates more
duplicates from look-alikes (on Quora Question Pairs, see benchmarks/cache_bench.py).
A scorer is trained once (``fit``), saved (``save``) and named in the cache policy;
categories then set thresholds on its probability instead of on cosine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .pair_features import LEXICAL, pair_features

NEWTON_STEPS = 25


class ScorerError(ValueError):
    """A scorer file that is missing, unreadable or made for other embeddings."""


@dataclass(frozen=True)
class PairScorer:
    weights: np.ndarray  # one per feature, then the bias
    embedding_model: str
    dim: int

    @classmethod
    def fit(
        cls, features: np.ndarray, labels: np.ndarray, embedding_model: str, dim: int,
        l2: float = 10.0,
    ) -> PairScorer:  # fmt: skip
        """Newton's method on the regularized log-loss (the bias is not regularized)."""
        x = _with_bias(np.asarray(features, np.float64))
        y = np.asarray(labels, np.float64)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError("features and labels must be non-empty and of the same length")
        penalty = np.full(x.shape[1], l2)
        penalty[-1] = 0.0
        w = np.zeros(x.shape[1])
        for _ in range(NEWTON_STEPS):
            p = _sigmoid(x @ w)
            gradient = x.T @ (p - y) + penalty * w
            hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-6:
                break
        return cls(w, embedding_model, dim)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return _sigmoid(_with_bias(np.asarray(features, np.float64)) @ self.weights)

    def score(
        self, queries: list[str], query_vectors: np.ndarray, cached: list[str],
        cached_vectors: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        return self.probabilities(pair_features(queries, query_vectors, cached, cached_vectors))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.savez(f, weights=self.weights, embedding_model=self.embedding_model,
                     dim=self.dim, lexical=np.array(LEXICAL))  # fmt: skip

    @classmethod
    def load(cls, path: Path, embedding_model: str, dim: int) -> PairScorer:
        try:
            with np.load(path) as saved:
                weights, model = saved["weights"], str(saved["embedding_model"])
                saved_dim, lexical = int(saved["dim"]), tuple(saved["lexical"].tolist())
        except (OSError, KeyError, ValueError) as exc:
            raise ScorerError(f"cannot read the pair scorer {path}: {exc}") from None
        if model != embedding_model or saved_dim != dim:
            raise ScorerError(
                f"the pair scorer {path} was trained on {model} ({saved_dim} dimensions), "
                f"not on {embedding_model} ({dim})"
            )
        if lexical != LEXICAL or len(weights) != 2 * dim + len(LEXICAL) + 1:
            raise ScorerError(f"the pair scorer {path} has other features than this version")
        return cls(weights, model, dim)


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((len(x), 1))])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
