"""A seeded generator of a software team's timeline, for the graph benchmark: people
change teams; issues change status, assignee and priority; services change owner and
port and depend on each other. Each change is a memory (one of several paraphrases) that
asserts its fact, valid from when it happened. Around them: corrections that arrive
later and restate a change with another value (valid from the same moment), paraphrased
restatements, look-alike names (ENG-42 next to ENG-24 and ENG-421), and chatter that
names the same entities but asserts nothing. Memories arrive in a shuffled order.

Questions carry their ground truth from the generator's own state:
- current: what holds now for a (subject, predicate) that changed several times;
- as_of: what held at a past moment (asked with ``as_of``);
- multihop: who owns the service that a service depends on;
- timeline: every value a (subject, predicate) has had (asked with include_superseded).
Each question has evidence groups: any memory of a group in the top 10 finds the group.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
SPAN_DAYS = 360

_FIRST = (
    "Alice Bob Carol Dana Erin Farid Grace Hiro Ines Jonas Kemal Lena Mateo Nadia "
    "Oskar Priya Quentin Rosa Sven Tariq Uma Viktor Wen Yara Zane Amir Bianca Cyrus "
    "Delia Emil Fiona Goran Hana Ivo Jade Kofi Lior Mira Nils Olga"
)
_LAST = (
    "Moreno Chen Diaz Reyes Walsh Okafor Novak Tanaka Silva Becker Haddad Kowalski "
    "Lindqvist Petrov Rossi Sato Varga Weber Yilmaz Zhou Abbott Brandt Costa Dufresne "
    "Eriksen Fischer Gallo Horvat Iyer Jensen"
)
_TEAMS = (
    "Payments Search Identity Platform Mobile Growth Billing Infra Data Security Messaging Storage"
)
_SYLLABLES = (
    "lark spur quill feather bram ble thorn wick cinder moss fen wren ash vale "
    "hollow brook tarn rook finch heron sedge marl flint cobalt amber"
)
FIRST, LAST, TEAMS, SYLLABLES = (words.split() for words in (_FIRST, _LAST, _TEAMS, _SYLLABLES))
ISSUE_KEYS = ("ENG", "OPS", "WEB")
STATUSES = ("open", "in progress", "in review", "blocked", "done")
PRIORITIES = ("P0", "P1", "P2", "P3")

TEMPLATES: dict[str, tuple[str, ...]] = {
    "team": (
        "{date}: {subject} moved to the {value} team.",
        "{subject} joined {value} on {date}.",
        "As of {date}, {subject} works on the {value} team.",
    ),
    "status": (
        "{date}: {subject} status changed to {value}.",
        "{subject} is now {value} (updated {date}).",
        "On {date} {subject} was moved to {value}.",
    ),
    "assignee": (
        "{date}: {subject} was assigned to {value}.",
        "{value} picked up {subject} on {date}.",
        "On {date} the assignee of {subject} became {value}.",
    ),
    "priority": (
        "{date}: {subject} priority set to {value}.",
        "{subject} was reprioritised to {value} on {date}.",
    ),
    "owner": (
        "{date}: {value} now owns the {subject} service.",
        "Ownership of {subject} passed to {value} on {date}.",
        "On {date} {subject} got a new owner: {value}.",
    ),
    "port": (
        "{date}: {subject} now listens on port {value}.",
        "On {date} {subject} moved to port {value}.",
    ),
    "depends_on": (
        "{subject} depends on {value} for every request (noted {date}).",
        "{date}: {subject} calls {value} on its hot path.",
    ),
}
CORRECTION = "Correction to the {date} update: {subject} {predicate} was actually {value}."
RESTATEMENT = "Reminder: since {date}, {subject} {predicate} is {value}."
CHATTER = (
    "{person} mentioned {subject} in standup on {date}.",
    "{person} asked in chat whether anyone had looked at {subject} ({date}).",
    "Retro notes {date}: {person} and {other} talked about {subject}.",
    "{person} shared a dashboard for {subject} on {date}.",
)
QUESTIONS = {
    "team": "Which team is {subject} on?",
    "status": "What is the status of {subject}?",
    "assignee": "Who is assigned to {subject}?",
    "priority": "What priority is {subject}?",
    "owner": "Who owns the {subject} service?",
    "port": "What port does {subject} listen on?",
}
AS_OF_QUESTIONS = {
    "team": "Which team was {subject} on on {date}?",
    "status": "What was the status of {subject} on {date}?",
    "assignee": "Who was assigned to {subject} on {date}?",
    "priority": "What priority did {subject} have on {date}?",
    "owner": "Who owned the {subject} service on {date}?",
    "port": "What port did {subject} listen on on {date}?",
}


@dataclass
class Memory:
    text: str
    facts: list[dict[str, Any]]
    valid_from: datetime
    key: tuple[str, str, str] | None = None  # (subject, predicate, value) it asserts
    arrival: float = 0.0  # when it reaches the service, in (0, 1): ingest order


@dataclass
class Question:
    kind: str  # current | as_of | multihop | timeline
    text: str
    evidence: list[list[int]]  # groups of memory positions; any one finds the group
    answer: str | None = None  # the top-1 memory must assert this value ...
    subject: str | None = None
    predicate: str | None = None
    as_of: datetime | None = None
    true_from: datetime | None = None  # ... valid from this moment


@dataclass
class Timeline:
    memories: list[Memory] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def day(t: datetime) -> str:
    return t.strftime("%Y-%m-%d")


class _Builder:
    def __init__(self, size: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.size = size
        self.memories: list[Memory] = []
        # (subject, predicate) -> [valid_from, value, memory positions] per change
        self.history: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
        units = max(size // 40, 8)
        self.people = self._names(units)
        self.services = self._services(max(units // 4, 4))
        self.issues = self._issues(units * 2)

    def _names(self, n: int) -> list[str]:
        names = [f"{f} {l}" for f in FIRST for l in LAST]  # noqa: E741
        self.rng.shuffle(names)
        return names[: min(n, len(names))]

    def _services(self, n: int) -> list[str]:
        out: set[str] = set()
        pairs = len(SYLLABLES) * (len(SYLLABLES) - 1)
        while len(out) < n:  # two syllables while they last, then three
            parts = self.rng.sample(SYLLABLES, 2 if len(out) < pairs // 2 else 3)
            out.add("".join(parts).capitalize())
        return sorted(out)

    def _issues(self, n: int) -> list[str]:
        # dense numbering makes look-alikes: ENG-42, ENG-24, ENG-421
        top = max(n // len(ISSUE_KEYS) * 2, 50)
        out: set[str] = set()
        while len(out) < n:
            out.add(f"{self.rng.choice(ISSUE_KEYS)}-{self.rng.randint(1, top)}")
        return sorted(out)

    def when(self) -> datetime:
        minutes = self.rng.randrange(SPAN_DAYS * 24 * 60)
        return START + timedelta(minutes=minutes)

    def add(self, text: str, subject: str, predicate: str, value: str, valid_from: datetime,
            is_object: bool) -> int:  # fmt: skip
        fact = {"subject": subject, "predicate": predicate, "valid_from": valid_from.isoformat()}
        fact["object" if is_object else "value"] = value
        memory = Memory(text, [fact], valid_from, (subject, predicate, value), self.rng.random())
        self.memories.append(memory)
        return len(self.memories) - 1

    def arrive_after(self, later: int, earlier: int) -> None:
        first = self.memories[earlier].arrival
        self.memories[later].arrival = first + (1 - first) * self.rng.random()

    def change(
        self, subject: str, predicate: str, value: str, at: datetime, is_object: bool,
        noisy: bool = True,
    ) -> None:  # fmt: skip
        template = self.rng.choice(TEMPLATES[predicate])
        text = template.format(subject=subject, value=value, date=day(at))
        position = self.add(text, subject, predicate, value, at, is_object)
        entry = [at, value, [position]]
        self.history[(subject, predicate)].append(entry)
        roll = self.rng.random() if noisy else 1.0
        if roll < 0.06:  # a correction, arriving later, with another value from the same moment
            pool = self._values(predicate)
            fixed = self.rng.choice([v for v in pool if v != value])
            noun = predicate.replace("_", " ")
            text = CORRECTION.format(date=day(at), subject=subject, predicate=noun, value=fixed)
            corrected = self.add(text, subject, predicate, fixed, at, is_object)
            self.arrive_after(corrected, position)
            entry[1], entry[2] = fixed, [corrected]
        elif roll < 0.12:  # a paraphrased restatement of the same fact
            noun = predicate.replace("_", " ")
            text = RESTATEMENT.format(date=day(at), subject=subject, predicate=noun, value=value)
            restated = self.add(text, subject, predicate, value, at, is_object)
            self.arrive_after(restated, position)
            entry[2].append(restated)

    def _values(self, predicate: str) -> list[str]:
        return {
            "team": TEAMS, "status": list(STATUSES), "priority": list(PRIORITIES),
            "assignee": self.people, "owner": self.people,
            "port": [str(p) for p in range(8000, 8100)],
        }[predicate]  # fmt: skip

    def build(self, questions_per_kind: int) -> Timeline:
        rng = self.rng
        for service in self.services:  # each depends on one other, from early on
            other = rng.choice([s for s in self.services if s != service])
            at = START + timedelta(hours=rng.randrange(24 * 10))
            self.change(service, "depends_on", other, at, True, noisy=False)
        plan = [("team", self.people, True), ("owner", self.services, True),
                ("port", self.services, False), ("status", self.issues, False),
                ("assignee", self.issues, True), ("priority", self.issues, False)]  # fmt: skip
        chatter_share = 0.2
        events_wanted = int(self.size * (1 - chatter_share))
        while len(self.memories) < events_wanted:
            predicate, subjects, is_object = rng.choice(plan)
            subject = rng.choice(subjects)
            pool = self._values(predicate)
            current = self._current(subject, predicate)
            value = rng.choice([v for v in pool if v != current])
            self.change(subject, predicate, value, self.when(), is_object)
        while len(self.memories) < self.size:
            subject = rng.choice(self.issues + self.services)
            person, other = rng.sample(self.people, 2)
            at = self.when()
            text = rng.choice(CHATTER).format(person=person, other=other, subject=subject,
                                              date=day(at))  # fmt: skip
            self.memories.append(Memory(text, [], at, None, rng.random()))
        self._unique_texts()
        for spans in self.history.values():
            spans.sort(key=lambda e: e[0])
        questions = self._questions(questions_per_kind)
        # arrival order: anything may come late, but a correction after what it corrects
        order = sorted(range(len(self.memories)), key=lambda i: self.memories[i].arrival)
        where = {old: new for new, old in enumerate(order)}
        memories = [self.memories[i] for i in order]
        for q in questions:
            q.evidence = [[where[i] for i in group] for group in q.evidence]
        return Timeline(memories, questions)

    def _current(self, subject: str, predicate: str) -> str | None:
        spans = self.history.get((subject, predicate))
        return max(spans, key=lambda e: e[0])[1] if spans else None

    def _unique_texts(self) -> None:
        seen: dict[str, int] = {}
        for m in self.memories:
            n = seen.get(m.text, 0)
            seen[m.text] = n + 1
            if n:
                m.text = f"{m.text} (#{n + 1})"

    def _questions(self, per_kind: int) -> list[Question]:
        rng = self.rng
        changing = [k for k, spans in self.history.items()
                    if len(spans) >= 3 and k[1] in QUESTIONS]  # fmt: skip
        rng.shuffle(changing)
        out: list[Question] = []
        for subject, predicate in changing[:per_kind]:
            at, value, positions = self.history[(subject, predicate)][-1]
            text = QUESTIONS[predicate].format(subject=subject)
            out.append(Question("current", text, [positions], value, subject, predicate,
                                None, at))  # fmt: skip
        rng.shuffle(changing)
        for subject, predicate in changing[:per_kind]:
            spans = self.history[(subject, predicate)]
            i = rng.randrange(len(spans) - 1)  # a span that has ended
            start, end = spans[i][0], spans[i + 1][0]
            if end - start < timedelta(hours=2):
                continue
            asked = start + (end - start) * rng.uniform(0.2, 0.8)
            text = AS_OF_QUESTIONS[predicate].format(subject=subject, date=day(asked))
            out.append(Question("as_of", text, [spans[i][2]], spans[i][1], subject, predicate,
                                asked, start))  # fmt: skip
        services = list(self.services)
        rng.shuffle(services)
        for service in services[:per_kind]:
            dependency = self.history[(service, "depends_on")][-1]
            owner = self.history.get((dependency[1], "owner"))
            if not owner:
                continue
            text = f"Who owns the service that {service} depends on?"
            out.append(Question("multihop", text, [dependency[2], owner[-1][2]]))
        rng.shuffle(changing)
        for subject, predicate in changing[:per_kind]:
            spans = self.history[(subject, predicate)]
            noun = predicate.replace("_", " ")
            text = f"How has the {noun} of {subject} changed over time?"
            out.append(Question("timeline", text, [s[2] for s in spans], subject=subject,
                                predicate=predicate))  # fmt: skip
        return out


def generate(size: int, questions_per_kind: int, seed: int = 16) -> Timeline:
    """A timeline of ``size`` memories and its questions; the same for the same seed."""
    return _Builder(size, seed).build(questions_per_kind)
