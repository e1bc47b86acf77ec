"""Which memories a query is about: the filters shared by list and search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from memos.errors import InvalidInputError

from .models import KEPT_STATES, LIVE_STATES, Kind, in_utc_range

MAX_FILTER_TAGS = 64  # a memory holds at most this many tags, so more can match nothing
MAX_FILTER_TAG_CHARS = 128


@dataclass(frozen=True)
class MemoryFilter:
    """All given fields must match; ``tags`` means every tag listed is present.

    ``valid_at`` keeps the memories true in the world at that time: valid from their
    ``valid_from`` (or, when none was given, from when they were stored) until their
    ``valid_to``."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    category: str | None = None
    kind: str | None = None
    tags: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    valid_at: datetime | None = None  # true in the world then (see ``valid_at`` below)
    states: tuple[str, ...] = ()  # lifecycle states; none given: the served ones

    @property
    def lifecycle(self) -> tuple[str, ...]:
        """The lifecycle states asked for: by default those served (generated, activated)."""
        return self.states or LIVE_STATES

    def __post_init__(self) -> None:
        tags = tuple(dict.fromkeys(self.tags))
        if len(tags) > MAX_FILTER_TAGS:
            raise InvalidInputError(
                f"filter tags may list at most {MAX_FILTER_TAGS} tags, got {len(tags)}"
            )
        for tag in tags:
            if not isinstance(tag, str) or not 0 < len(tag) <= MAX_FILTER_TAG_CHARS:
                raise InvalidInputError(
                    f"filter tags must be strings of 1 to {MAX_FILTER_TAG_CHARS} characters"
                )
        object.__setattr__(self, "tags", tags)
        if isinstance(self.states, str) or not isinstance(self.states, tuple | list):
            raise InvalidInputError("filter states must be a list of lifecycle states")
        for state in self.states:
            if state not in KEPT_STATES:
                raise InvalidInputError(
                    f"filter states must name states among {list(KEPT_STATES)}, got {state!r}"
                )
        object.__setattr__(self, "states", tuple(dict.fromkeys(self.states)))
        if self.kind is not None and self.kind not in {k.value for k in Kind}:
            raise InvalidInputError(
                f"filter kind must be one of {sorted(k.value for k in Kind)}, got {self.kind!r}"
            )
        for name in ("created_after", "created_before", "valid_at"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidInputError(f"filter {name} needs a time zone (e.g. ...Z)")
            if value is not None and not in_utc_range(value):
                raise InvalidInputError(f"filter {name} is out of range once moved to UTC")
        if (
            self.created_after is not None
            and self.created_before is not None
            and self.created_after >= self.created_before
        ):
            raise InvalidInputError("filter created_after must be earlier than created_before")

    @property
    def is_empty(self) -> bool:
        return self == MemoryFilter()
