"""Readers: what turns the items a system retrieved into an answer.

- ``ExtractiveReader`` (no LLM): reads the question's target — an issue's field, a
  count, a first day, a commit's issue — and takes the answer from the items in the
  order the system gave them (best first; full-context gives newest first), so the
  score says how well the memory ranked what holds, without a small model's noise.
  It knows the tracker's fields and their values from the dataset's structured
  changes, as an agent knows its tracker's schema.
- ``ChatReader``: any OpenAI-compatible chat endpoint — the embedded model (this
  service's ``/v1/chat/completions``) or a URL — shown the items and the question.

Every reader reports the prompt an LLM reader would be given (``prompt_messages``), so
prompt tokens are counted the same way for every reader.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .dataset import Dataset, Question
from .errors import EvalError
from .metrics import exact_match
from .systems import Item

UNKNOWN = "unknown"
SYSTEM_PROMPT = (
    "You answer questions about a software team from its memory: lines from its chat, "
    "issue tracker and git, each with the time it happened. The tracker's changes are "
    "the truth; a later change replaces an earlier one. Answer with the answer only "
    f"(a name, status, priority, number or date), or '{UNKNOWN}' if the lines do not say."
)

# one worked exchange: small models copy its short form
EXAMPLE = [
    {
        "role": "user",
        "content": "Memory:\n[2026-01-05 10:00] issues/OPS Kim: OPS-9 priority changed to P2\n"
        "[2026-01-06 11:00] issues/OPS Lee: OPS-9 priority changed to P0\n\n"
        "It is now 2026-01-07 09:00. Question: What priority is OPS-9?",
    },
    {"role": "assistant", "content": "P0"},
]

Retrieve = Callable[[str], list[Item]]


def prompt_messages(question: Question, items: Sequence[Item]) -> list[dict[str, str]]:
    lines = "\n".join(item.rendered for item in items) or "(nothing)"
    asked = f"{question.time:%Y-%m-%d %H:%M}"
    user = f"Memory:\n{lines}\n\nIt is now {asked}. Question: {question.text}"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *EXAMPLE,
        {"role": "user", "content": user},
    ]


@dataclass
class Reading:
    answer: str
    items: list[Item]  # every item the reader was shown (follow-ups included)
    calls: int = 1  # memory calls made for this question


class Reader(ABC):
    name: str

    @abstractmethod
    def read(self, question: Question, retrieve: Retrieve) -> Reading: ...

    def close(self) -> None:  # noqa: B027 - most readers hold nothing
        pass


# extractive --------------------------------------------------------------------------

_KEY = r"[A-Z][A-Z0-9]{1,9}-\d{1,7}"
_FORMS: list[tuple[str, re.Pattern[str]]] = [
    ("as-of", re.compile(rf"what was the status of (?P<key>{_KEY}) on ", re.I)),
    ("field:status", re.compile(rf"what is the status of (?P<key>{_KEY})\b", re.I)),
    ("field:priority", re.compile(rf"what priority is (?P<key>{_KEY})\b", re.I)),
    ("via-commit", re.compile(r"issue that commit (?P<sha>[0-9a-f]{5,40}) fixes", re.I)),
    ("field:assignee", re.compile(rf"who is (?P<key>{_KEY}) assigned to", re.I)),
    ("first", re.compile(rf"what day did (?P<key>{_KEY}) first go to (?P<value>[^?]+)", re.I)),
    ("count", re.compile(r"how many issues are assigned to (?P<person>[^?]+)", re.I)),
]


@dataclass
class Vocabulary:
    """A tracker's fields and the values each takes, longest first (so 'in review'
    is matched before a shorter value inside it)."""

    values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, dataset: Dataset) -> Vocabulary:
        seen: dict[str, set[str]] = {}
        for event in dataset.events:
            for name, value in event.changes.items():
                seen.setdefault(name, set()).add(str(value))
        return cls({k: sorted(v, key=lambda s: (-len(s), s)) for k, v in seen.items()})

    def find(self, field_name: str, text: str) -> str | None:
        """The value of ``field_name`` the text states first, if any."""
        best: tuple[int, str] | None = None
        for value in self.values.get(field_name, ()):
            match = re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text, re.I)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), value)
        return best[1] if best else None


def _mentions(text: str, key: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", text) is not None


class ExtractiveReader(Reader):
    name = "extractive"

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def read(self, question: Question, retrieve: Retrieve) -> Reading:
        items = retrieve(question.text)
        reading = Reading(UNKNOWN, list(items))
        for form, pattern in _FORMS:
            match = pattern.search(question.text)
            if match is None:
                continue
            reading.answer = self._answer(form, match, question, reading, retrieve)
            return reading
        # a question outside the tracker's forms: the best item is the answer
        reading.answer = items[0].text if items else UNKNOWN
        return reading

    def _answer(
        self,
        form: str,
        match: re.Match[str],
        question: Question,
        reading: Reading,
        retrieve: Retrieve,
    ) -> str:
        items = reading.items
        if form.startswith("field:"):
            return self._field(items, match["key"], form.removeprefix("field:")) or UNKNOWN
        if form == "as-of":
            world = question.as_of or question.time
            before = [i for i in items if i.time <= world]
            return self._field(before, match["key"], "status") or UNKNOWN
        if form == "first":
            wanted = match["value"].strip()
            times = [
                i.time
                for i in items
                if _mentions(i.text, match["key"])
                and (self.vocabulary.find("status", i.text) or "").lower() == wanted.lower()
            ]
            return min(times).strftime("%Y-%m-%d") if times else UNKNOWN
        if form == "count":
            person = match["person"].strip()
            holder: dict[str, str] = {}
            for item in items:
                for key in re.findall(_KEY, item.text):
                    value = self.vocabulary.find("assignee", item.text)
                    if value is not None:
                        holder.setdefault(key, value)
            return str(sum(1 for v in holder.values() if v.lower() == person.lower()))
        # via-commit: the commit names the issue; the owner may need a second look
        commit = next((i for i in items if match["sha"] in i.text), None)
        keys = re.findall(_KEY, commit.text) if commit else []
        if not keys:
            return UNKNOWN
        owner = self._field(items, keys[0], "assignee")
        if owner is None:
            more = retrieve(f"Who is {keys[0]} assigned to?")
            reading.items.extend(more)
            reading.calls += 1
            owner = self._field(more, keys[0], "assignee")
        return owner or UNKNOWN

    def _field(self, items: Sequence[Item], key: str, field_name: str) -> str | None:
        """The first value of the issue's field stated by an item, in the order given."""
        for item in items:
            if _mentions(item.text, key):
                value = self.vocabulary.find(field_name, item.text)
                if value is not None:
                    return value
        return None


# chat --------------------------------------------------------------------------------


def _first_line(text: str) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    return line.strip().strip(".").strip() or UNKNOWN


class ChatEndpoint:
    """An OpenAI-compatible ``/v1/chat/completions``, greedy and short."""

    def __init__(self, base_url: str, api_key: str = "", model: str = "", timeout_s: float = 120):
        base = base_url.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._http = httpx.Client(headers=headers, timeout=timeout_s)

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 24) -> str:
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if self.model:
            body["model"] = self.model
        try:
            response = self._http.post(self.url, json=body)
        except httpx.TransportError as exc:
            raise EvalError(f"cannot reach the chat endpoint {self.url}: {exc}") from None
        if response.status_code != 200:
            raise EvalError(
                f"chat endpoint {self.url} answered {response.status_code}: {response.text[:300]}"
            )
        return str(response.json()["choices"][0]["message"]["content"] or "")

    def close(self) -> None:
        self._http.close()


class ChatReader(Reader):
    def __init__(self, endpoint: ChatEndpoint, name: str) -> None:
        self.endpoint = endpoint
        self.name = name

    def read(self, question: Question, retrieve: Retrieve) -> Reading:
        items = retrieve(question.text)
        said = self.endpoint.complete(prompt_messages(question, items))
        return Reading(_first_line(said), list(items))

    def close(self) -> None:
        self.endpoint.close()


class LLMJudge:
    """Asks a chat model whether an answer means the same as the accepted one."""

    def __init__(self, endpoint: ChatEndpoint) -> None:
        self.endpoint = endpoint

    def correct(self, question: Question, answer: str) -> bool:
        """An exact match (normalized) is correct without asking; the model judges the rest."""
        if exact_match(answer, question.accepted):
            return True
        accepted = " / ".join(question.accepted)
        said = self.endpoint.complete(
            [
                {
                    "role": "system",
                    "content": "You grade answers. Reply with yes or no only.",
                },
                {
                    "role": "user",
                    "content": f"Question: {question.text}\nCorrect answer: {accepted}\n"
                    f"Given answer: {answer}\nDoes the given answer mean the correct one?",
                },
            ],
            max_tokens=3,
        )
        return said.strip().lower().startswith("yes")
