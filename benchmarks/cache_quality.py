"""How well a cache's hit decision separates duplicates from look-alikes, on pairs
(cache ``a``, ask ``b``): useful hits (on duplicate pairs) against false hits, per
category, with thresholds tuned on one split and measured on another.

Rates: the useful-hit rate is useful hits over all queries; the false-positive rate is
false hits over the queries labeled not-duplicate (see DESIGN.md for why not
1 - precision on QQP's noisy labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """Operating points of one score, best score first: at each, the share of queries
    served usefully and the false-positive rate."""

    thresholds: np.ndarray
    useful: np.ndarray
    fpr: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray, labels: np.ndarray) -> Curve:
        order = np.argsort(-scores, kind="stable")
        duplicate = labels[order].astype(bool)
        negatives = max(1, int((~labels.astype(bool)).sum()))
        return cls(
            scores[order],
            np.cumsum(duplicate) / len(labels),
            np.cumsum(~duplicate) / negatives,
        )

    def useful_at(self, fpr: float) -> float:
        """The useful-hit rate at exactly this false-positive rate (linear between the
        two operating points around it)."""
        return float(np.interp(fpr, self.fpr, self.useful))

    def threshold_for(self, fpr: float) -> float:
        """The lowest threshold whose false-positive rate stays within ``fpr``."""
        within = np.nonzero(self.fpr <= fpr)[0]
        return float(self.thresholds[within[-1]]) if len(within) else float("inf")


def rates(hits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    duplicate = labels.astype(bool)
    hits = hits.astype(bool)
    n, negatives = len(labels), max(1, int((~duplicate).sum()))
    useful = int((hits & duplicate).sum())
    return {
        "hit_rate": float(hits.sum() / n),
        "useful_hit_rate": useful / n,
        "false_positive_rate": float((hits & ~duplicate).sum() / negatives),
        "precision": useful / max(1, int(hits.sum())),
        "recall": useful / max(1, int(duplicate.sum())),
    }


def category_thresholds(
    scores: np.ndarray, labels: np.ndarray, categories: np.ndarray, price: float
) -> dict[str, float]:
    """Per category, the threshold maximizing useful hits - ``price`` x false hits: the
    Lagrangian form of "most useful hits within a false-hit budget", so that a budget is
    met by choosing the price (``thresholds_for_budget``)."""
    thresholds = {}
    for category in np.unique(categories):
        mine = categories == category
        order = np.argsort(-scores[mine], kind="stable")
        duplicate = labels[mine][order].astype(bool)
        gain = np.cumsum(np.where(duplicate, 1.0, -price))
        best = int(np.argmax(gain)) if len(gain) else -1
        ranked = scores[mine][order]
        thresholds[str(category)] = float(ranked[best]) if best >= 0 and gain[best] > 0 else 1e9
    return thresholds


def apply(scores: np.ndarray, categories: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    limits = np.array([thresholds.get(str(c), 1e9) for c in categories])
    return scores >= limits


def thresholds_for_budget(
    scores: np.ndarray, labels: np.ndarray, categories: np.ndarray, budget: float
) -> dict[str, float]:
    """Per-category thresholds whose false-positive rate on these pairs is at most
    ``budget``, with the most useful hits (bisection on the price of a false hit)."""
    low, high = 0.0, 1e4
    best = category_thresholds(scores, labels, categories, high)
    for _ in range(60):
        price = (low + high) / 2
        thresholds = category_thresholds(scores, labels, categories, price)
        fpr = rates(apply(scores, categories, thresholds), labels)["false_positive_rate"]
        if fpr <= budget:
            best, high = thresholds, price
        else:
            low = price
    return best


def tuned_curve(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    budgets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each train budget, thresholds tuned on ``train`` and applied to ``test``:
    (realized test false-positive rates, test useful-hit rates), by rising rate."""
    fprs, useful = [], []
    for budget in budgets:
        thresholds = thresholds_for_budget(*train, budget)
        r = rates(apply(test[0], test[2], thresholds), test[1])
        fprs.append(r["false_positive_rate"])
        useful.append(r["useful_hit_rate"])
    order = np.argsort(fprs, kind="stable")
    return np.asarray(fprs)[order], np.maximum.accumulate(np.asarray(useful)[order])
