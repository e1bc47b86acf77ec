"""Published memory benchmarks' layouts, read into the evaluation's dataset
(dataset.py). No public data ships here; these read the files their authors publish.

- LoCoMo: a list of samples, each ``{"sample_id", "conversation": {"speaker_a",
  "speaker_b", "session_<n>_date_time": "1:56 pm on 8 May, 2023", "session_<n>": [{"speaker",
  "dia_id", "text"}, ...]}, "qa": [{"question", "answer", "evidence": [dia_id, ...],
  "category": 1-5}]}``. Each sample is an instance; each turn an event (chat, the session
  as its channel); the questions are asked after the last session.
- LongMemEval: a list of items, each ``{"question_id", "question_type", "question",
  "answer", "question_date", "haystack_dates", "haystack_session_ids",
  "haystack_sessions": [[{"role", "content"}, ...], ...], "answer_session_ids"}``. Each
  item is an instance; each turn an event; a question's evidence is every turn of its
  answer sessions (LongMemEval scores recall by session).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .dataset import Dataset, DatasetError, Event, Question

# LoCoMo's categories: 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial
LOCOMO_TYPES = {
    1: "cross-platform",
    2: "temporal",
    3: "aggregation",
    4: "current-state",
    5: "unanswerable",
}
LONGMEMEVAL_TYPES = {
    "single-session-user": "current-state",
    "single-session-assistant": "current-state",
    "single-session-preference": "current-state",
    "multi-session": "aggregation",
    "temporal-reasoning": "temporal",
    "knowledge-update": "as-of",
}
_SESSION = re.compile(r"session_(\d+)")


def load_locomo(path: Path) -> Dataset:
    samples = _json_list(path)
    dataset = Dataset()
    for n, sample in enumerate(samples):
        where = f"{path}: sample {n}"
        name = str(sample.get("sample_id") or f"locomo-{n}")
        conversation = sample.get("conversation")
        if not isinstance(conversation, dict):
            raise DatasetError(f"{where}: conversation is missing")
        instance = dataset.instance(name)
        sessions = sorted(
            (int(m.group(1)), key)
            for key in conversation
            if (m := _SESSION.fullmatch(key)) and isinstance(conversation[key], list)
        )
        last = datetime(2000, 1, 1, tzinfo=UTC)
        for _, key in sessions:
            start = _locomo_time(conversation.get(f"{key}_date_time"), f"{where}, {key}")
            start = max(start, last)
            for i, turn in enumerate(conversation[key]):
                dia_id, text = turn.get("dia_id"), turn.get("text")
                if not isinstance(dia_id, str) or not isinstance(text, str):
                    raise DatasetError(f"{where}, {key} turn {i}: dia_id and text are needed")
                last = start + timedelta(seconds=i)
                instance.events.append(
                    Event(
                        id=dia_id,
                        time=last,
                        platform="chat",
                        text=text,
                        channel=key,
                        author=turn.get("speaker"),
                        instance=name,
                    )
                )
        seen = {e.id for e in instance.events}
        for i, qa in enumerate(sample.get("qa") or []):
            evidence = tuple(e for e in qa.get("evidence") or [] if isinstance(e, str))
            unknown = [e for e in evidence if e not in seen]
            if unknown:
                raise DatasetError(f"{where}, qa {i}: evidence {unknown[0]!r} is no dia_id")
            category = qa.get("category")
            answer = qa.get("answer", qa.get("adversarial_answer"))
            if not isinstance(qa.get("question"), str) or answer is None:
                raise DatasetError(f"{where}, qa {i}: question and answer are needed")
            instance.questions.append(
                Question(
                    id=f"{name}-q{i}",
                    time=last + timedelta(minutes=1),
                    text=qa["question"],
                    answer=str(answer),
                    type=LOCOMO_TYPES.get(category, "current-state"),
                    evidence=evidence,
                    instance=name,
                )
            )
    return dataset


def load_longmemeval(path: Path) -> Dataset:
    items = _json_list(path)
    dataset = Dataset()
    for n, item in enumerate(items):
        where = f"{path}: item {n}"
        name = str(item.get("question_id") or f"lme-{n}")
        sessions = item.get("haystack_sessions")
        ids, dates = item.get("haystack_session_ids"), item.get("haystack_dates")
        if not (
            isinstance(sessions, list)
            and isinstance(ids, list)
            and isinstance(dates, list)
            and len(sessions) == len(ids) == len(dates)
        ):
            raise DatasetError(
                f"{where}: haystack_sessions, haystack_session_ids and haystack_dates are "
                "lists of one length"
            )
        instance = dataset.instance(name)
        order = sorted(range(len(ids)), key=lambda k: _lme_time(dates[k], f"{where}, date {k}"))
        by_session: dict[str, list[str]] = {}
        for k in order:
            start = _lme_time(dates[k], f"{where}, date {k}")
            for t, turn in enumerate(sessions[k]):
                content = turn.get("content") if isinstance(turn, dict) else None
                if not isinstance(content, str):
                    raise DatasetError(f"{where}, session {ids[k]} turn {t}: content is needed")
                event_id = f"{ids[k]}:{t}"
                by_session.setdefault(str(ids[k]), []).append(event_id)
                instance.events.append(
                    Event(
                        id=event_id,
                        time=start + timedelta(seconds=t),
                        platform="chat",
                        text=content,
                        channel=str(ids[k]),
                        author=turn.get("role"),
                        instance=name,
                    )
                )
        evidence = [
            e for sid in item.get("answer_session_ids") or [] for e in by_session.get(str(sid), [])
        ]
        asked = _lme_time(item.get("question_date"), f"{where}, question_date")
        last = instance.events[-1].time if instance.events else asked
        if not isinstance(item.get("question"), str) or item.get("answer") is None:
            raise DatasetError(f"{where}: question and answer are needed")
        qtype = str(item.get("question_type", ""))
        instance.questions.append(
            Question(
                id=name,
                time=max(asked, last),
                text=item["question"],
                answer=str(item["answer"]),
                type="unanswerable"
                if name.endswith("_abs")
                else LONGMEMEVAL_TYPES.get(qtype, "current-state"),
                evidence=tuple(evidence),
                instance=name,
            )
        )
    return dataset


def _json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise DatasetError(f"{path}: the file holds a JSON list of objects")
    return data


def _locomo_time(value: Any, where: str) -> datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023"."""
    if not isinstance(value, str):
        raise DatasetError(f"{where}: the session's date_time is missing")
    try:
        return datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError:
        raise DatasetError(
            f"{where}: date_time {value!r} is not like '1:56 pm on 8 May, 2023'"
        ) from None


def _lme_time(value: Any, where: str) -> datetime:
    """LongMemEval's "2023/05/20 (Sat) 02:21"."""
    if not isinstance(value, str):
        raise DatasetError(f"{where}: a date is missing")
    cleaned = re.sub(r"\s*\([A-Za-z]+\)\s*", " ", value).strip()
    try:
        return datetime.strptime(cleaned, "%Y/%m/%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise DatasetError(f"{where}: {value!r} is not like '2023/05/20 (Sat) 02:21'") from None
