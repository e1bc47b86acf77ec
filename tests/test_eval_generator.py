"""The generator's ground truth: on a scripted timeline the tracker's state is known at
every time (late arrivals, chat that contradicts it, as-of questions); generated sets
are reproducible, valid in the dataset format, and each answer is the truth's."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from memos.eval.dataset import Event, lines_of, read_lines
from memos.eval.generator import generate
from memos.eval.truth import IssueTruth

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_the_truth_of_a_scripted_timeline() -> None:
    events = [
        Event(
            "e1",
            at(0),
            "issues",
            "ENG-1 created",
            refs=("ENG-1",),
            changes={"status": "open", "assignee": "ana"},
        ),
        Event("e2", at(1), "chat", "I think ENG-1 is done", refs=("ENG-1",)),  # talk, no change
        Event(
            "e3",
            at(2),
            "issues",
            "ENG-1 status in review",
            refs=("ENG-1",),
            changes={"status": "in review"},
        ),
        # seen at 5 h, happened at 3 h: a late arrival
        Event(
            "e4",
            at(5),
            "issues",
            "ENG-1 assignee bo",
            refs=("ENG-1",),
            changes={"assignee": "bo"},
            happened_at=at(3),
        ),
    ]
    truth = IssueTruth(events)
    assert truth.value("ENG-1", "status", at(1.5), at(1.5)).value == "open"  # chat is not truth
    assert truth.value("ENG-1", "status", at(2), at(2)).event_id == "e3"
    # at 4 h the late change had happened but was not seen yet
    assert truth.value("ENG-1", "assignee", at(4), at(4)).value == "ana"
    # seen later, it is what held at 4 h
    assert truth.value("ENG-1", "assignee", at(4), at(6)).value == "bo"
    assert truth.value("ENG-1", "assignee", at(2.5), at(6)).value == "ana"  # before it happened
    assert truth.first_time("ENG-1", "status", "in review", at(6)).happened == at(2)
    assert truth.value("ENG-9", "status", at(6), at(6)) is None


def test_generated_sets_are_reproducible_and_valid() -> None:
    first, again = generate(300, seed=11), generate(300, seed=11)
    assert list(lines_of(first)) == list(lines_of(again))
    assert list(lines_of(first)) != list(lines_of(generate(300, seed=12)))
    reread = read_lines(list(lines_of(first)))  # the checks of the format pass
    assert reread.questions == first.questions and len(reread.events) == 300
    platforms = Counter(e.platform for e in first.events)
    assert set(platforms) == {"issues", "chat", "git"}
    assert any(e.happened_at is not None for e in first.events)  # late arrivals
    assert any(e.text.startswith("correction:") for e in first.events)  # corrections
    types = Counter(q.type for q in generate(1000, seed=7).questions)
    assert set(types) == {
        "current-state",
        "as-of",
        "temporal",
        "aggregation",
        "cross-platform",
        "unanswerable",
    }


def test_every_answer_is_the_truths() -> None:
    dataset = generate(600, seed=5)
    events = dataset.events
    for question in dataset.questions:
        seen = [e for e in events if e.time <= question.time]
        truth = IssueTruth(seen)
        if question.type == "current-state":
            issue = re.search(r"ENG-\d+", question.text).group(0)
            field = (
                "status"
                if "status" in question.text
                else "assignee"
                if "assigned" in question.text
                else "priority"
            )
            change = truth.value(issue, field, question.time, question.time)
            assert change.value == question.answer and question.evidence == (change.event_id,)
        elif question.type == "as-of":
            issue = re.search(r"ENG-\d+", question.text).group(0)
            change = truth.value(issue, "status", question.as_of, question.time)
            assert change.value == question.answer
        elif question.type == "unanswerable":
            assert question.evidence == () and question.answer == "unknown"
        for evidence in question.evidence:
            assert evidence in {e.id for e in seen}


def test_a_change_delivered_twice_counts_once() -> None:
    first = Event("e1", at(0), "issues", "ENG-1 status changed to done", refs=("ENG-1",),
                  changes={"status": "done"})  # fmt: skip
    again = Event("e2", at(2), "issues", first.text, refs=("ENG-1",), changes={"status": "done"},
                  happened_at=at(0))  # fmt: skip
    truth = IssueTruth([first, again])
    held = truth.value("ENG-1", "status", at(3), at(3))
    assert held is not None and held.event_id == "e1"


def test_the_generator_redelivers_some_changes() -> None:
    events = generate(events=1000, seed=7).events
    seen: dict[tuple[str, str], str] = {}
    redelivered = 0
    for e in events:
        if e.platform == "issues" and e.happened_at is not None:
            key = (e.text, str(e.happened_at))
            redelivered += key in seen
        if e.platform == "issues":
            seen[(e.text, str(e.happened_at or e.time))] = e.id
    assert redelivered > 0
