"""The evaluation dataset: timestamped events and the questions asked about them.

One JSON object a line (docs/eval.md):

- an event: ``{"kind": "event", "id", "time", "platform": chat|issues|git|other,
  "channel", "author", "text", "refs": [ids it mentions], "changes": {field: value},
  "happened_at"?}`` — ``time`` is when the memory system sees it (non-decreasing down
  the file); ``happened_at``, when it happened, may be earlier (a late arrival);
- a question: ``{"kind": "question", "id", "time", "text", "answer", "aliases": [...],
  "evidence": [event ids], "type": current-state|as-of|cross-platform|temporal|
  aggregation|unanswerable, "as_of"?}`` — asked at ``time``, about the world at
  ``as_of`` (default: then); its evidence are events seen before it.

Both may carry ``"instance"``: a dataset holds independent instances (the memory is
reset between them), like MEMTRACK's 47 or LongMemEval's items.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

PLATFORMS = ("chat", "issues", "git", "other")
QUESTION_TYPES = (
    "current-state",
    "as-of",
    "cross-platform",
    "temporal",
    "aggregation",
    "unanswerable",
)
DEFAULT_INSTANCE = "default"


class DatasetError(ValueError):
    """A dataset line that breaks the format; the message names the line."""


@dataclass(frozen=True)
class Event:
    id: str
    time: datetime
    platform: str
    text: str
    channel: str | None = None
    author: str | None = None
    refs: tuple[str, ...] = ()
    changes: dict[str, Any] = field(default_factory=dict)
    happened_at: datetime | None = None
    instance: str = DEFAULT_INSTANCE


@dataclass(frozen=True)
class Question:
    id: str
    time: datetime
    text: str
    answer: str
    type: str
    evidence: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    as_of: datetime | None = None
    instance: str = DEFAULT_INSTANCE

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.answer, *self.aliases)


@dataclass
class Instance:
    """One independent timeline and the questions asked along it, in order."""

    name: str
    events: list[Event] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


@dataclass
class Dataset:
    instances: dict[str, Instance] = field(default_factory=dict)

    @property
    def events(self) -> list[Event]:
        return [e for i in self.instances.values() for e in i.events]

    @property
    def questions(self) -> list[Question]:
        return [q for i in self.instances.values() for q in i.questions]

    def instance(self, name: str) -> Instance:
        return self.instances.setdefault(name, Instance(name))


# reading ------------------------------------------------------------------------------


def load_jsonl(path: Path) -> Dataset:
    """The dataset in ``path``, checked line by line (``DatasetError`` names the line)."""
    with path.open(encoding="utf-8") as lines:
        return read_lines(lines, str(path))


def read_lines(lines: Iterable[str], source: str = "<dataset>") -> Dataset:
    dataset = Dataset()
    seen_events: dict[str, set[str]] = {}  # instance -> event ids so far
    last_time: dict[str, datetime] = {}
    ids: set[tuple[str, str]] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: a line is a JSON object")
        item = _parse(row, where)
        instance = dataset.instance(item.instance)
        if (item.instance, item.id) in ids:
            raise DatasetError(f"{where}: id {item.id!r} is used twice")
        ids.add((item.instance, item.id))
        previous = last_time.get(item.instance)
        if previous is not None and item.time < previous:
            raise DatasetError(
                f"{where}: time {item.time.isoformat()} is before the line above's "
                f"({previous.isoformat()}); lines go in the order the system sees them"
            )
        last_time[item.instance] = item.time
        known = seen_events.setdefault(item.instance, set())
        if isinstance(item, Event):
            instance.events.append(item)
            known.add(item.id)
        else:
            unknown = [e for e in item.evidence if e not in known]
            if unknown:
                raise DatasetError(
                    f"{where}: evidence {unknown[0]!r} is no event seen before this question"
                )
            instance.questions.append(item)
    return dataset


def _parse(row: dict[str, Any], where: str) -> Event | Question:
    kind = row.get("kind")
    if kind == "event":
        platform = _text(row, "platform", where)
        if platform not in PLATFORMS:
            raise DatasetError(f"{where}: platform must be one of {', '.join(PLATFORMS)}")
        changes = row.get("changes") or {}
        if not isinstance(changes, dict):
            raise DatasetError(f"{where}: changes must be an object")
        return Event(
            id=_text(row, "id", where),
            time=_time(row, "time", where),
            platform=platform,
            text=_text(row, "text", where),
            channel=_optional(row, "channel", where),
            author=_optional(row, "author", where),
            refs=_texts(row, "refs", where),
            changes=changes,
            happened_at=_time(row, "happened_at", where, required=False),
            instance=_optional(row, "instance", where) or DEFAULT_INSTANCE,
        )
    if kind == "question":
        qtype = _text(row, "type", where)
        if qtype not in QUESTION_TYPES:
            raise DatasetError(f"{where}: type must be one of {', '.join(QUESTION_TYPES)}")
        return Question(
            id=_text(row, "id", where),
            time=_time(row, "time", where),
            text=_text(row, "text", where),
            answer=_text(row, "answer", where),
            type=qtype,
            evidence=_texts(row, "evidence", where),
            aliases=_texts(row, "aliases", where),
            as_of=_time(row, "as_of", where, required=False),
            instance=_optional(row, "instance", where) or DEFAULT_INSTANCE,
        )
    raise DatasetError(f"{where}: kind must be event or question, got {kind!r}")


def _text(row: dict[str, Any], name: str, where: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: {name} is missing (a non-empty string)")
    return value


def _optional(row: dict[str, Any], name: str, where: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise DatasetError(f"{where}: {name} must be a string")
    return value


def _texts(row: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = row.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{where}: {name} must be a list of strings")
    return tuple(value)


def _time(row: dict[str, Any], name: str, where: str, required: bool = True) -> Any:
    value = row.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise DatasetError(f"{where}: {name} is missing (an ISO 8601 time with a zone)")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DatasetError(f"{where}: {name} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise DatasetError(f"{where}: {name} needs a time zone (e.g. ...Z)")
    return moment


# writing ------------------------------------------------------------------------------


def dump_jsonl(dataset: Dataset, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for line in lines_of(dataset):
            out.write(line + "\n")


def lines_of(dataset: Dataset) -> Iterator[str]:
    """The dataset as JSONL lines, each instance's items in the order they are seen."""
    for instance in dataset.instances.values():
        items: list[Event | Question] = [*instance.events, *instance.questions]
        # stable: at one time an event comes before a question asked then
        items.sort(key=lambda i: (i.time, isinstance(i, Question)))
        for item in items:
            yield json.dumps(_row(item), ensure_ascii=False)


def _row(item: Event | Question) -> dict[str, Any]:
    row = {"kind": "event" if isinstance(item, Event) else "question", **asdict(item)}
    for key, value in list(row.items()):
        if isinstance(value, datetime):
            row[key] = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, tuple):
            row[key] = list(value)
    return {k: v for k, v in row.items() if v is not None}
