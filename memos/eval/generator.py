"""MEMTRACK-style timelines, generated: a software team's issue tracker, chat and git,
interleaved and noisy, with contradictions, later corrections, late arrivals and
cross-references; and questions answered from the tracker's true state (truth.py).

``generate(events=1000, seed=7)`` gives the same dataset for the same arguments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .dataset import Dataset, Event, Question
from .truth import IssueTruth

PEOPLE = ["Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun"]
STATUSES = ["open", "in progress", "in review", "done"]
PRIORITIES = ["P0", "P1", "P2", "P3"]
TOPICS = [
    "login",
    "billing",
    "search",
    "export",
    "sync",
    "upload",
    "alerts",
    "invoices",
    "onboarding",
    "reports",
    "webhooks",
    "permissions",
]
NOISE = [
    "lunch at 12?",
    "standup moved to 10:15",
    "who has the projector key?",
    "coffee machine is fixed",
    "reminder: retro on friday",
    "nice work everyone",
    "is the wifi slow for anyone else?",
    "new snacks in the kitchen",
]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FIELDS = ("status", "assignee", "priority")
# the CI-sized set: small, yet it asks every question type
CI_SET = {"events": 300, "questions": 50}


@dataclass
class _Issue:
    key: str
    topic: str
    status: str
    assignee: str
    priority: str
    created: datetime


def generate(events: int = 1000, seed: int = 7, questions: int | None = None) -> Dataset:
    """A timeline of about ``events`` events and ``questions`` questions (default: one
    for every 10 events) asked along it."""
    if events < 20:
        raise ValueError("events must be at least 20")
    rng = random.Random(seed)
    n_issues = max(5, events // 25)
    wanted = questions if questions is not None else max(10, events // 10)
    dataset = Dataset()
    instance = dataset.instance("team")
    truth = IssueTruth()
    issues: dict[str, _Issue] = {}
    commits: dict[str, list[Event]] = {}  # issue -> the commits that reference it
    clock = START
    ids = iter(range(1, 10 * events))
    ask_every = max(1, events // wanted)
    asked = 0

    def emit(
        platform: str,
        text: str,
        author: str,
        refs: tuple[str, ...] = (),
        changes: dict | None = None,
        late_by: timedelta | None = None,
        channel: str | None = None,
    ) -> Event:
        event = Event(
            id=f"e{next(ids)}",
            time=clock,
            platform=platform,
            text=text,
            channel=channel,
            author=author,
            refs=refs,
            changes=changes or {},
            happened_at=clock - late_by if late_by else None,
            instance="team",
        )
        instance.events.append(event)
        truth.observe(event)
        return event

    while len(instance.events) < events:
        clock += timedelta(minutes=rng.randint(3, 90))
        roll = rng.random()
        if len(issues) < n_issues and (roll < 0.12 or not issues):
            key = f"ENG-{len(issues) + 1}"
            issue = _Issue(
                key,
                TOPICS[rng.randrange(len(TOPICS))],
                "open",
                rng.choice(PEOPLE),
                rng.choice(PRIORITIES),
                clock,
            )
            issues[key] = issue
            emit(
                "issues",
                f"{key} created (open, {issue.priority}): {issue.topic} is broken, "
                f"assigned to {issue.assignee}",
                rng.choice(PEOPLE),
                (key,),
                {"status": "open", "assignee": issue.assignee, "priority": issue.priority},
                channel="ENG",
            )
        elif roll < 0.45:
            issue = issues[rng.choice(sorted(issues))]
            field = rng.choice(FIELDS)
            if field == "status":
                nxt = STATUSES[min(STATUSES.index(issue.status) + 1, len(STATUSES) - 1)]
                value = nxt if nxt != issue.status else rng.choice(STATUSES[:3])
            elif field == "assignee":
                value = rng.choice([p for p in PEOPLE if p != issue.assignee])
            else:
                value = rng.choice([p for p in PRIORITIES if p != issue.priority])
            setattr(issue, field, value)
            late = None
            if rng.random() < 0.1:  # seen late: it happened a while before it arrived
                room = (clock - issue.created) // timedelta(minutes=1) - 1
                late = timedelta(minutes=rng.randint(1, min(240, room))) if room >= 1 else None
            author = rng.choice(PEOPLE)
            change = emit(
                "issues",
                f"{issue.key} {field} changed to {value}",
                author,
                (issue.key,),
                {field: value},
                late,
                channel="ENG",
            )
            if rng.random() < 0.05:  # the tracker's webhook delivers it again, later
                clock += timedelta(minutes=rng.randint(1, 30))
                emit(
                    "issues",
                    change.text,
                    author,
                    change.refs,
                    dict(change.changes),
                    clock - (change.happened_at or change.time),
                    channel="ENG",
                )
        elif roll < 0.65:
            issue = issues[rng.choice(sorted(issues))]
            sha = f"{rng.getrandbits(28):07x}"
            commit = emit(
                "git",
                f"commit {sha}: fix {issue.topic} ({issue.key})",
                issue.assignee,
                (issue.key, sha),
                channel="main",
            )
            commits.setdefault(issue.key, []).append(commit)
        elif roll < 0.80:
            issue = issues[rng.choice(sorted(issues))]
            if rng.random() < 0.3:  # a wrong claim, corrected later in the thread
                wrong = rng.choice([s for s in STATUSES if s != issue.status])
                emit(
                    "chat",
                    f"I think {issue.key} is {wrong} already",
                    rng.choice(PEOPLE),
                    (issue.key,),
                    channel="#eng",
                )
                clock += timedelta(minutes=rng.randint(1, 20))
                emit(
                    "chat",
                    f"correction: {issue.key} is still {issue.status}",
                    issue.assignee,
                    (issue.key,),
                    channel="#eng",
                )
            else:
                emit(
                    "chat",
                    f"{issue.assignee} is looking at the {issue.topic} problem ({issue.key})",
                    rng.choice(PEOPLE),
                    (issue.key,),
                    channel="#eng",
                )
        else:
            emit("chat", rng.choice(NOISE), rng.choice(PEOPLE), channel="#random")
        if len(instance.events) >= ask_every * (asked + 1) and asked < wanted and issues:
            clock += timedelta(minutes=1)
            question = _question(rng, truth, sorted(issues), commits, clock, asked)
            if question is not None:
                instance.questions.append(question)
            asked += 1
    return dataset


def _question(
    rng: random.Random,
    truth: IssueTruth,
    keys: list[str],
    commits: dict[str, list[Event]],
    now: datetime,
    n: int,
) -> Question | None:
    """One question asked at ``now``, answered from what the tracker held."""
    kind = rng.choices(
        ["current-state", "as-of", "temporal", "aggregation", "cross-platform", "unanswerable"],
        weights=[5, 2, 1, 1, 1, 1],
    )[0]
    key = rng.choice(keys)
    qid = f"q{n + 1}"
    if kind == "cross-platform":  # the commit names the issue; the tracker, its owner
        fixed = sorted(k for k in commits if commits[k])
        if not fixed:
            return None
        commit = commits[rng.choice(fixed)][-1]
        change = truth.value(commit.refs[0], "assignee", now, now)
        if change is None:
            return None
        text = f"Who is assigned to the issue that commit {commit.refs[1]} fixes?"
        return Question(
            qid,
            now,
            text,
            change.value,
            "cross-platform",
            (commit.id, change.event_id),
            instance="team",
        )
    if kind == "current-state":
        field = rng.choice(FIELDS)
        change = truth.value(key, field, now, now)
        if change is None:
            return None
        words = {
            "status": f"What is the status of {key}?",
            "assignee": f"Who is {key} assigned to?",
            "priority": f"What priority is {key}?",
        }
        return Question(
            qid,
            now,
            words[field],
            change.value,
            "current-state",
            (change.event_id,),
            instance="team",
        )
    if kind == "as-of":
        world = now - timedelta(hours=rng.randint(6, 72))
        change = truth.value(key, "status", world, now)
        if change is None:
            return None
        day = world.strftime("%Y-%m-%d %H:%M UTC")
        return Question(
            qid,
            now,
            f"What was the status of {key} on {day}?",
            change.value,
            "as-of",
            (change.event_id,),
            as_of=world,
            instance="team",
        )
    if kind == "temporal":
        change = truth.first_time(key, "status", "in review", now)
        if change is None:
            return None
        return Question(
            qid,
            now,
            f"On what day did {key} first go to in review?",
            change.happened.strftime("%Y-%m-%d"),
            "temporal",
            (change.event_id,),
            instance="team",
        )
    if kind == "aggregation":
        person = rng.choice(PEOPLE)
        held = [truth.value(k, "assignee", now, now) for k in keys]
        theirs = [c for c in held if c is not None and c.value == person]
        return Question(
            qid,
            now,
            f"How many issues are assigned to {person}?",
            str(len(theirs)),
            "aggregation",
            tuple(c.event_id for c in theirs),
            instance="team",
        )
    missing = f"ENG-{len(keys) + 100 + n}"
    return Question(
        qid,
        now,
        f"Who is {missing} assigned to?",
        "unknown",
        "unanswerable",
        aliases=("nobody", "no such issue"),
        instance="team",
    )
