"""What was true of each issue, and when: the ground truth questions are answered from.

Only structured changes on the issue tracker (``platform == "issues"``, ``changes``)
set a field; chat messages and commits are talk about it. A change takes effect at the
time it happened (``happened_at``, else when it was seen) and is known from when it was
seen (a change delivered twice counts once, from its first delivery):
``value(issue, field, world=t, known=k)`` is the value the tracker held at ``t``
as far as the events seen by ``k`` tell, with the event that set it (the evidence).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .dataset import Event


@dataclass(frozen=True)
class Change:
    issue: str
    field: str
    value: str
    happened: datetime
    seen: datetime
    event_id: str


class IssueTruth:
    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._changes: dict[tuple[str, str], list[Change]] = {}
        for event in events:
            self.observe(event)

    def observe(self, event: Event) -> None:
        if event.platform != "issues" or not event.refs:
            return
        issue = event.refs[0]
        happened = event.happened_at or event.time
        for name, value in event.changes.items():
            known = self._changes.setdefault((issue, name), [])
            if any(c.value == str(value) and c.happened == happened for c in known):
                continue  # the same change delivered again: the first delivery is the evidence
            known.append(Change(issue, name, str(value), happened, event.time, event.id))

    def issues(self) -> list[str]:
        return sorted({issue for issue, _ in self._changes})

    def value(self, issue: str, field: str, world: datetime, known: datetime) -> Change | None:
        """The change in effect for ``issue``'s ``field`` at ``world``, among those seen
        by ``known``: the latest that happened by then (the later-seen wins a tie)."""
        candidates = [
            c
            for c in self._changes.get((issue, field), ())
            if c.seen <= known and c.happened <= world
        ]
        return max(candidates, key=lambda c: (c.happened, c.seen), default=None)

    def first_time(self, issue: str, field: str, value: str, known: datetime) -> Change | None:
        """The earliest change that set ``field`` to ``value``, among those seen by ``known``."""
        matching = [
            c for c in self._changes.get((issue, field), ()) if c.value == value and c.seen <= known
        ]
        return min(matching, key=lambda c: c.happened, default=None)
