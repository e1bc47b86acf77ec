"""The evaluation's datasets: our JSONL format round-trips and refuses bad lines with
the line named; LoCoMo and LongMemEval files (written here in their published layouts)
load into it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memos.eval import DatasetError, load_jsonl, load_locomo, load_longmemeval
from memos.eval.dataset import dump_jsonl

LINES = [
    {
        "kind": "event",
        "id": "e1",
        "time": "2026-03-02T09:00:00Z",
        "platform": "issues",
        "channel": "ENG",
        "author": "ana",
        "text": "ENG-42 opened: login fails",
        "refs": ["ENG-42"],
        "changes": {"status": "open", "assignee": "ana"},
    },
    {
        "kind": "event",
        "id": "e2",
        "time": "2026-03-02T10:00:00Z",
        "platform": "chat",
        "channel": "#eng",
        "author": "bo",
        "text": "I'll take ENG-42",
        "refs": ["ENG-42"],
        "happened_at": "2026-03-02T09:30:00Z",
    },
    {
        "kind": "question",
        "id": "q1",
        "time": "2026-03-02T11:00:00Z",
        "text": "Who is ENG-42 assigned to?",
        "answer": "ana",
        "aliases": ["Ana"],
        "evidence": ["e1"],
        "type": "current-state",
    },
    {
        "kind": "event",
        "id": "e3",
        "time": "2026-03-03T08:00:00Z",
        "platform": "git",
        "text": "fix login (ENG-42)",
        "refs": ["ENG-42"],
        "instance": "other",
    },
]


def write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_jsonl_format_round_trips(tmp_path: Path) -> None:
    dataset = load_jsonl(write(tmp_path, LINES))
    assert list(dataset.instances) == ["default", "other"]
    [question] = dataset.questions
    assert question.accepted == ("ana", "Ana") and question.evidence == ("e1",)
    assert (
        dataset.events[1].happened_at is not None and dataset.events[0].changes["status"] == "open"
    )
    again = tmp_path / "again.jsonl"
    dump_jsonl(dataset, again)
    reloaded = load_jsonl(again)
    assert reloaded.events == dataset.events and reloaded.questions == dataset.questions


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ((2, {"evidence": ["e9"]}), "line 3: evidence 'e9' is no event seen before"),
        ((1, {"time": "2026-03-01T00:00:00Z"}), "line 2: time 2026-03-01T00:00:00+00:00 is before"),
        ((0, {"text": None}), "line 1: text is missing"),
        ((0, {"platform": "fax"}), "line 1: platform must be one of"),
        ((2, {"type": "vibes"}), "line 3: type must be one of"),
        ((1, {"time": "2026-03-02T10:00:00"}), "line 2: time needs a time zone"),
        ((1, {"id": "e1"}), "line 2: id 'e1' is used twice"),
        ((0, {"kind": "note"}), "line 1: kind must be event or question"),
    ],
)
def test_bad_lines_are_refused_with_the_line_named(
    tmp_path: Path, change: tuple[int, dict], words: str
) -> None:
    index, fields = change
    rows = [dict(r) for r in LINES]
    rows[index].update(fields)
    rows[index] = {k: v for k, v in rows[index].items() if v is not None}
    with pytest.raises(DatasetError, match=words.replace("(", r"\(").replace("+", r"\+")):
        load_jsonl(write(tmp_path, rows))


def test_a_locomo_file_loads(tmp_path: Path) -> None:
    sample = {
        "sample_id": "conv-1",
        "conversation": {
            "speaker_a": "Caroline",
            "speaker_b": "Melanie",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Caroline", "dia_id": "D1:1", "text": "I went to a support group."},
                {"speaker": "Melanie", "dia_id": "D1:2", "text": "How was it?"},
            ],
            "session_2_date_time": "10:37 am on 27 June, 2023",
            "session_2": [{"speaker": "Melanie", "dia_id": "D2:1", "text": "I painted a sunrise."}],
        },
        "qa": [
            {
                "question": "What did Melanie paint?",
                "answer": "a sunrise",
                "evidence": ["D2:1"],
                "category": 4,
            },
            {
                "question": "When did Caroline go to the group?",
                "answer": "7 May 2023",
                "evidence": ["D1:1"],
                "category": 2,
            },
        ],
    }
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample]))
    dataset = load_locomo(path)
    instance = dataset.instances["conv-1"]
    assert [e.id for e in instance.events] == ["D1:1", "D1:2", "D2:1"]
    assert instance.events[2].time.month == 6 and instance.events[0].author == "Caroline"
    assert [(q.type, q.evidence) for q in instance.questions] == [
        ("current-state", ("D2:1",)),
        ("temporal", ("D1:1",)),
    ]
    out = tmp_path / "as-ours.jsonl"
    dump_jsonl(dataset, out)
    assert load_jsonl(out).questions == dataset.questions  # the loaded set is valid ours
    sample["qa"][0]["evidence"] = ["D9:9"]
    path.write_text(json.dumps([sample]))
    with pytest.raises(DatasetError, match="qa 0: evidence 'D9:9' is no dia_id"):
        load_locomo(path)


def test_a_longmemeval_file_loads(tmp_path: Path) -> None:
    item = {
        "question_id": "q-7",
        "question_type": "knowledge-update",
        "question": "Where do I work now?",
        "answer": "Acme",
        "question_date": "2023/06/01 (Thu) 09:00",
        "haystack_dates": ["2023/05/20 (Sat) 02:21", "2023/05/10 (Wed) 08:00"],
        "haystack_session_ids": ["s2", "s1"],
        "haystack_sessions": [
            [{"role": "user", "content": "I moved to Acme."}],
            [
                {"role": "user", "content": "I work at Initech."},
                {"role": "assistant", "content": "Noted."},
            ],
        ],
        "answer_session_ids": ["s2"],
    }
    path = tmp_path / "lme.json"
    path.write_text(json.dumps([item]))
    instance = load_longmemeval(path).instances["q-7"]
    assert [e.id for e in instance.events] == ["s1:0", "s1:1", "s2:0"]  # in time order
    [question] = instance.questions
    assert question.type == "as-of" and question.evidence == ("s2:0",)
    item["haystack_dates"] = ["May 20", *item["haystack_dates"][1:]]
    path.write_text(json.dumps([item]))
    with pytest.raises(DatasetError, match="date 0"):
        load_longmemeval(path)
