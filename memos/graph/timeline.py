"""Bi-temporal facts: what was true in the world when, as the service knew it when.

A fact says that a subject's predicate had an object (an entity) or a value from
``valid_from`` on, optionally until ``valid_until`` (an end the assertion itself
states). The service learned it at ``recorded_at`` and, if it retracted it, at
``retired_at``. Rows are never changed except to retire them, so every past belief
can be asked for again.

A fact's end in the world is not stored: on its (subject, predicate), the fact that
became valid next supersedes it, so its ``valid_to`` is the earlier of its own stated
end and its successor's ``valid_from`` — among the facts known at the time asked
about. A fact that arrives late but was valid earlier therefore slots into the history
in its place, and one retired (its memory deleted) gives its span back to its
predecessor. Two facts valid from the same instant: the one recorded later is the
correction and supersedes the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Fact:
    id: str
    namespace: str
    subject: str  # entity id
    predicate: str
    object: str | None  # entity id, or None for a literal value
    value: str | None
    valid_from: datetime
    valid_until: datetime | None  # an end the assertion states itself
    recorded_at: datetime
    retired_at: datetime | None
    memory_id: str | None  # the memory whose version asserted it (provenance)
    memory_version: int | None

    def known_at(self, recorded: datetime) -> bool:
        """Whether the service held this fact at ``recorded``."""
        return self.recorded_at <= recorded and (
            self.retired_at is None or self.retired_at > recorded
        )


@dataclass(frozen=True)
class Span:
    """A fact with its place in its (subject, predicate) history as known at a time."""

    fact: Fact
    valid_to: datetime | None  # None: still true
    superseded_by: str | None  # the fact whose validity ended this one, if any

    def holds_at(self, world: datetime) -> bool:
        return self.fact.valid_from <= world and (self.valid_to is None or world < self.valid_to)


def history(facts: Iterable[Fact], known_at: datetime) -> list[Span]:
    """One (subject, predicate)'s facts known at ``known_at``, in world order, each with
    its end and what superseded it."""
    known = sorted(
        (f for f in facts if f.known_at(known_at)), key=lambda f: (f.valid_from, f.recorded_at)
    )
    spans: list[Span] = []
    successors: list[Fact | None] = [*known[1:], None] if known else []
    for fact, successor in zip(known, successors, strict=True):
        valid_to, superseded_by = fact.valid_until, None
        if successor is not None and (valid_to is None or successor.valid_from < valid_to):
            valid_to, superseded_by = successor.valid_from, successor.id
        spans.append(Span(fact, valid_to, superseded_by))
    return spans


def state_at(facts: Iterable[Fact], world: datetime, known_at: datetime) -> Span | None:
    """The fact that held at world time ``world``, as the service knew at ``known_at``."""
    holding = [s for s in history(facts, known_at) if s.holds_at(world)]
    return holding[-1] if holding else None
