"""What the MemScheduler does and when: the ``[scheduler]`` table of the TOML config
(see docs/scheduler.example.toml)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from memos.config import config_table
from memos.errors import InvalidInputError
from memos.memcube.models import Source

ANY = "*"
RULES = ("expire", "purge", "activate", "archive", "merge", "activation")
DAY_S = 86_400.0


@dataclass(frozen=True)
class SchedulerPolicy:
    interval_s: float = 30.0  # between passes
    rules: tuple[str, ...] = RULES  # the lifecycle rules that run, in this order
    # activate: a generated (or archived) memory used in an answer, or read this often
    # within hot_window_s since it last changed, becomes activated
    activate_after_accesses: int = 3
    hot_window_s: float = DAY_S
    # archive: a served memory neither read nor changed for this long leaves default search
    archive_after_s: float = 30 * DAY_S
    # merge (opt-in): served memories of one owner, session, category, tag set and
    # metadata, at least this similar, are fused, when their category is among
    # merge_categories or the source that created them among merge_sources ("*": any).
    # Records (added with dedupe false) are never merged. Default: nothing is merged.
    merge_min_similarity: float = 0.97
    merge_categories: tuple[str, ...] = ()
    merge_sources: tuple[str, ...] = ()
    # activation: a user's or agent's hot memories as one pinned KV block
    activation_min_memories: int = 3  # hot memories a user or agent needs for a block
    activation_max_memories: int = 32  # the hottest this many go in the block ...
    activation_max_chars: int = 8_000  # ... within this many characters
    activation_pin_ttl_s: float = 600.0  # a block's pin lives this long after its last use
    activation_cold_after_s: float = 3_600.0  # a block unused this long is demoted

    def __post_init__(self) -> None:
        unknown = [r for r in self.rules if r not in RULES]
        if unknown or len(set(self.rules)) != len(self.rules):
            raise InvalidInputError(
                f"scheduler: rules must name distinct rules among {list(RULES)}, "
                f"got {list(self.rules)}"
            )
        for name in ("interval_s", "hot_window_s", "archive_after_s", "activation_pin_ttl_s",
                     "activation_cold_after_s"):  # fmt: skip
            value = getattr(self, name)
            if not _is_number(value) or value <= 0:
                raise InvalidInputError(f"scheduler: {name} must be a positive number of seconds")
        if self.activation_pin_ttl_s > 600:
            raise InvalidInputError("scheduler: activation_pin_ttl_s may be at most 600")
        for name in ("activate_after_accesses", "activation_min_memories",
                     "activation_max_memories", "activation_max_chars"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"scheduler: {name} must be a whole number of at least 1")
        if self.activation_min_memories > self.activation_max_memories:
            raise InvalidInputError(
                "scheduler: activation_min_memories may not exceed activation_max_memories"
            )
        sources = {s.value for s in Source} | {ANY}
        if not set(self.merge_sources) <= sources:
            raise InvalidInputError(
                f"scheduler: merge_sources must name sources among {sorted(sources)}"
            )
        for name in ("merge_categories", "merge_sources"):
            value = getattr(self, name)
            if not all(isinstance(v, str) and v for v in value):
                raise InvalidInputError(f"scheduler: {name} must be a list of names")
        score = self.merge_min_similarity
        if not _is_number(score) or not 0.5 <= score <= 1:
            raise InvalidInputError("scheduler: merge_min_similarity must be from 0.5 to 1")

    @classmethod
    def from_mapping(cls, table: dict[str, Any]) -> SchedulerPolicy:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise InvalidInputError(f"scheduler: unknown setting {unknown[0]!r}")
        values = dict(table)
        for name in ("rules", "merge_categories", "merge_sources"):
            if name in values:
                given = values[name]
                if not isinstance(given, list) or not all(isinstance(v, str) for v in given):
                    raise InvalidInputError(f"scheduler: {name} must be a list of names")
                values[name] = tuple(given)
        return cls(**values)

    def merges(self, category: str | None, source: str) -> bool:
        """Whether the merge rule may fuse a memory of ``category`` created by ``source``."""
        return (
            ANY in self.merge_categories
            or (category is not None and category in self.merge_categories)
            or ANY in self.merge_sources
            or source in self.merge_sources
        )

    @classmethod
    def from_file(cls, path: Path | None, interval_s: float | None = None) -> SchedulerPolicy:
        """The ``[scheduler]`` table of a TOML config file (the defaults when there is
        none); ``interval_s`` is the default interval (MEMOS_MAINTENANCE_INTERVAL_S)."""
        table = config_table(path, "scheduler", InvalidInputError) if path is not None else {}
        if interval_s is not None and "interval_s" not in table:
            table = {**table, "interval_s": interval_s}
        return cls.from_mapping(table)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
