"""The evaluation's scores on hand-built cases."""

from __future__ import annotations

import pytest

from memos.eval.metrics import (
    evidence_recall,
    exact_match,
    normalize,
    repeated_share,
    token_f1,
)


def test_normalization_and_exact_match() -> None:
    assert normalize("  The Status is: In-Review! ") == "status is inreview"
    assert exact_match("In progress.", ["in progress"]) == 1.0
    assert exact_match("the P1", ["P1"]) == 1.0
    assert exact_match("P1 or P2", ["P1"]) == 0.0
    assert exact_match("Ana", ["ana", "Ana Lopez"]) == 1.0


def test_token_f1() -> None:
    assert token_f1("in review", ["in review"]) == 1.0
    assert token_f1("it is in review", ["in review"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("done", ["in review"]) == 0.0
    assert token_f1("", [""]) == 1.0 and token_f1("x", [""]) == 0.0
    assert token_f1("bob", ["ana", "bob"]) == 1.0  # the best accepted answer counts


def test_evidence_recall_at_k() -> None:
    assert evidence_recall(["e3", "e1", "e7"], ["e1"], k=1) == 0.0
    assert evidence_recall(["e3", "e1", "e7"], ["e1"], k=2) == 1.0
    assert evidence_recall(["e3", "e1"], ["e1", "e9"], k=10) == 0.5
    assert evidence_recall(["e3"], [], k=10) is None  # nothing to recall: not scored


def test_repeated_share() -> None:
    assert repeated_share([]) == 0.0
    assert repeated_share(["ENG-1 is done", "ENG-1 is DONE.", "ENG-2 open", "ENG-1 is done"]) == 0.5
