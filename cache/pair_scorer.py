"""The probability that a cached query asks the same as a new one: the mean of a few small
neural networks (one hidden layer each, different seeds) over ``pair_features``,
trained on labeled pairs.

One cosine threshold serves only the near-identical paraphrases at a low false-hit
rate; weighing the embedding's dimensions, and how they combine with a few lexical
signals, separates more duplicates from look-alikes (on Quora Question Pairs, see
benchmarks/cache_bench.py; a logistic regression over the same features gained about
half as much). A scorer is trained once (``fit``), saved (``save``) and named in the cache
policy; categories then set thresholds on its probability instead of on cosine.
Inference is two matrix products in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .pair_features import LEXICAL, pair_features

HIDDEN = 64
MEMBERS = 3  # networks averaged: their seeds' luck evens out
EPOCHS = 40
BATCH = 256
LEARNING_RATE = 1e-3
L2 = 1e-4
PATIENCE = 4  # epochs without a better validation loss before training stops
VALIDATION_SHARE = 0.1


class ScorerError(ValueError):
    """A scorer file that is missing, unreadable or made for other embeddings."""


@dataclass(frozen=True)
class PairScorer:
    mean: np.ndarray  # feature standardization
    scale: np.ndarray
    w1: np.ndarray  # members x features x hidden
    b1: np.ndarray  # members x hidden
    w2: np.ndarray  # members x hidden
    b2: np.ndarray  # members
    embedding_model: str
    dim: int

    @classmethod
    def fit(
        cls, features: np.ndarray, labels: np.ndarray, embedding_model: str, dim: int,
        seed: int = 0,
    ) -> PairScorer:  # fmt: skip
        """Per member, Adam on the log-loss with L2, stopped early on a held-out tenth of
        the pairs (a different tenth for each)."""
        x = np.asarray(features, np.float32)
        y = np.asarray(labels, np.float32)
        if len(x) != len(y) or len(x) < 20:
            raise ValueError("need at least 20 labeled pairs, as many features as labels")
        mean = x.mean(axis=0)
        scale = x.std(axis=0) + 1e-6
        x = (x - mean) / scale
        members = [_train_member(x, y, np.random.default_rng(seed + m)) for m in range(MEMBERS)]
        w1, b1, w2, b2 = (np.stack([params[i] for params in members]) for i in range(4))
        return cls(mean, scale, w1, b1, w2, b2.reshape(-1), embedding_model, dim)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float32) - self.mean) / self.scale
        every = [
            _forward([self.w1[m], self.b1[m], self.w2[m], self.b2[m : m + 1]], x)[1]
            for m in range(len(self.b2))
        ]
        return np.mean(every, axis=0).astype(np.float64)

    def score(
        self, queries: list[str], query_vectors: np.ndarray, cached: list[str],
        cached_vectors: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        return self.probabilities(pair_features(queries, query_vectors, cached, cached_vectors))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.savez(f, mean=self.mean, scale=self.scale, w1=self.w1, b1=self.b1, w2=self.w2,
                     b2=self.b2, embedding_model=self.embedding_model, dim=self.dim,
                     lexical=np.array(LEXICAL))  # fmt: skip

    @classmethod
    def load(cls, path: Path, embedding_model: str, dim: int) -> PairScorer:
        try:
            with np.load(path) as saved:
                arrays = {k: saved[k] for k in ("mean", "scale", "w1", "b1", "w2", "b2")}
                model = str(saved["embedding_model"])
                saved_dim, lexical = int(saved["dim"]), tuple(saved["lexical"].tolist())
        except (OSError, KeyError, ValueError) as exc:
            raise ScorerError(f"cannot read the pair scorer {path}: {exc}") from None
        if model != embedding_model or saved_dim != dim:
            raise ScorerError(
                f"the pair scorer {path} was trained on {model} ({saved_dim} dimensions), "
                f"not on {embedding_model} ({dim})"
            )
        if lexical != LEXICAL or arrays["w1"].shape[1] != 2 * dim + len(LEXICAL):
            raise ScorerError(f"the pair scorer {path} has other features than this version")
        return cls(**arrays, embedding_model=model, dim=saved_dim)


def _train_member(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(len(x))
    cut = max(1, int(len(x) * VALIDATION_SHARE))
    held, train = order[:cut], order[cut:]
    params = [
        rng.normal(0, np.sqrt(2 / x.shape[1]), (x.shape[1], HIDDEN)).astype(np.float32),
        np.zeros(HIDDEN, np.float32),
        rng.normal(0, np.sqrt(1 / HIDDEN), HIDDEN).astype(np.float32),
        np.zeros(1, np.float32),
    ]
    adam = _Adam(params)
    best, best_loss, stale = [p.copy() for p in params], np.inf, 0
    for _ in range(EPOCHS):
        shuffled = rng.permutation(train)
        for start in range(0, len(shuffled), BATCH):
            batch = shuffled[start : start + BATCH]
            adam.step(_gradients(params, x[batch], y[batch]))
        loss = _log_loss(params, x[held], y[held])
        if loss < best_loss - 1e-5:
            best, best_loss, stale = [p.copy() for p in params], loss, 0
        else:
            stale += 1
            if stale >= PATIENCE:
                break
    return best


def _forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w1, b1, w2, b2 = params
    hidden = np.maximum(0.0, x @ w1 + b1)
    return hidden, 1.0 / (1.0 + np.exp(-np.clip(hidden @ w2 + b2[0], -40, 40)))


def _log_loss(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(_forward(params, x)[1], 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _gradients(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    w1, _, w2, _ = params
    hidden, p = _forward(params, x)
    error = (p - y) / len(x)  # d(log-loss)/d(logit)
    back = np.outer(error, w2) * (hidden > 0)
    return [
        x.T @ back + L2 * w1,
        back.sum(axis=0),
        hidden.T @ error + L2 * w2,
        np.array([error.sum()], np.float32),
    ]


class _Adam:
    def __init__(self, params: list[np.ndarray], beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.params = params
        self.beta1, self.beta2 = beta1, beta2
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            m_hat = m / (1 - self.beta1**self.t)
            v_hat = v / (1 - self.beta2**self.t)
            p -= (LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(p.dtype)
