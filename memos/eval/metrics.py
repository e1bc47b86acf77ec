"""Scores of one answer (correctness) and of what a system retrieved for it (evidence
recall, redundancy). Text is compared normalized: lower case, punctuation and the
articles a/an/the dropped, spaces collapsed (SQuAD's convention)."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def exact_match(prediction: str, accepted: Sequence[str]) -> float:
    """1.0 when the prediction equals an accepted answer, normalized."""
    said = normalize(prediction)
    return 1.0 if any(said == normalize(a) for a in accepted) else 0.0


def token_f1(prediction: str, accepted: Sequence[str]) -> float:
    """The best token-overlap F1 against the accepted answers."""
    return max(
        (_f1(normalize(prediction).split(), normalize(a).split()) for a in accepted), default=0.0
    )


def _f1(said: list[str], truth: list[str]) -> float:
    if not said or not truth:
        return float(said == truth)
    common = sum((Counter(said) & Counter(truth)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(said), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def evidence_recall(retrieved: Sequence[str], evidence: Sequence[str], k: int) -> float | None:
    """The share of the evidence events among the first ``k`` retrieved (None: a question
    with no evidence, which recall does not score)."""
    if not evidence:
        return None
    top = set(retrieved[:k])
    return sum(1 for e in set(evidence) if e in top) / len(set(evidence))


def repeated_share(retrieved_texts: Sequence[str]) -> float:
    """The share of retrieved items whose text (normalized) an earlier item already had."""
    if not retrieved_texts:
        return 0.0
    seen: set[str] = set()
    repeats = 0
    for text in retrieved_texts:
        key = normalize(text)
        repeats += key in seen
        seen.add(key)
    return repeats / len(retrieved_texts)
