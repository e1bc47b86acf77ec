"""Per-category cache policy: how similar a query must be to hit, how long an answer
lives, how many a namespace keeps, which goes first when full, and how far load may
move the threshold and the time to live.

Read from the ``[cache]`` table of the service's TOML config file (``MEMOS_CONFIG``)::

    [cache]
    default_category = "general"
    [cache.load]
    normal = 2      # backend queue depth at or below which the base policy holds
    overload = 8    # at or above which thresholds and TTLs reach their bounds
    [cache.categories.general]
    threshold = 0.95
    ttl_s = 3600
    max_entries = 10000
    eviction = "lru"          # or "lfu"
    min_threshold = 0.93      # the lowest the threshold may go under load
    max_ttl_s = 7200          # the longest the TTL may grow under load
    exemplars = ["how do I reset my password", "what is the refund policy"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memos.config import config_table
from memos.errors import InvalidInputError

EVICTIONS = ("lru", "lfu")
MAX_TTL_S = 30 * 24 * 3600.0
DEFAULT_CATEGORY = "general"


class PolicyError(InvalidInputError):
    """A cache policy that cannot work, with the field that is wrong."""


@dataclass(frozen=True)
class CategoryPolicy:
    name: str
    threshold: float = 0.95
    ttl_s: float = 3600.0
    max_entries: int = 10_000  # per namespace
    eviction: str = "lru"
    min_threshold: float | None = None  # None: load does not move the threshold
    max_ttl_s: float | None = None  # None: load does not move the TTL
    exemplars: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"cache category {self.name!r}"
        if not self.name or len(self.name) > 64:
            raise PolicyError(f"{where}: a category name has 1 to 64 characters")
        if not _finite(self.threshold) or not 0 < self.threshold <= 1:
            raise PolicyError(f"{where}: threshold must be in (0, 1], got {self.threshold!r}")
        if not _finite(self.ttl_s) or not 0 < self.ttl_s <= MAX_TTL_S:
            raise PolicyError(f"{where}: ttl_s must be in (0, {MAX_TTL_S:g}], got {self.ttl_s!r}")
        if isinstance(self.max_entries, bool) or not isinstance(self.max_entries, int):
            raise PolicyError(f"{where}: max_entries must be a whole number")
        if self.max_entries < 1:
            raise PolicyError(f"{where}: max_entries must be at least 1, got {self.max_entries}")
        if self.eviction not in EVICTIONS:
            raise PolicyError(
                f"{where}: eviction must be one of {EVICTIONS}, got {self.eviction!r}"
            )
        low = self.min_threshold
        if low is not None and (not _finite(low) or not 0 < low <= self.threshold):
            raise PolicyError(f"{where}: min_threshold must be in (0, threshold], got {low!r}")
        high = self.max_ttl_s
        if high is not None and (not _finite(high) or not self.ttl_s <= high <= MAX_TTL_S):
            raise PolicyError(f"{where}: max_ttl_s must be in [ttl_s, {MAX_TTL_S:g}], got {high!r}")

    def under_load(self, pressure: float) -> tuple[float, float]:
        """(threshold, ttl_s) at a load pressure from 0 (normal) to 1 (overloaded):
        the threshold falls and the TTL grows linearly toward their bounds."""
        pressure = min(1.0, max(0.0, pressure))
        low = self.threshold if self.min_threshold is None else self.min_threshold
        high = self.ttl_s if self.max_ttl_s is None else self.max_ttl_s
        return (
            self.threshold - pressure * (self.threshold - low),
            self.ttl_s + pressure * (high - self.ttl_s),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold, "ttl_s": self.ttl_s, "max_entries": self.max_entries,
            "eviction": self.eviction, "min_threshold": self.min_threshold,
            "max_ttl_s": self.max_ttl_s, "exemplars": len(self.exemplars),
        }  # fmt: skip


@dataclass(frozen=True)
class LoadBounds:
    """Backend load (requests waiting on the model) mapped to a pressure from 0 to 1."""

    normal: float = 2.0
    overload: float = 8.0

    def __post_init__(self) -> None:
        if not (_finite(self.normal) and _finite(self.overload)) or not (
            0 <= self.normal < self.overload
        ):
            raise PolicyError(
                f"cache load: need 0 <= normal < overload, got {self.normal!r}, {self.overload!r}"
            )

    def pressure(self, load: float) -> float:
        return min(1.0, max(0.0, (load - self.normal) / (self.overload - self.normal)))


@dataclass(frozen=True)
class CachePolicy:
    categories: dict[str, CategoryPolicy] = field(
        default_factory=lambda: {DEFAULT_CATEGORY: CategoryPolicy(DEFAULT_CATEGORY)}
    )
    default_category: str = ""  # "": the first category
    load: LoadBounds = field(default_factory=LoadBounds)
    max_query_chars: int = 4_096
    max_response_chars: int = 65_536
    scorer: Path | None = None  # a trained PairScorer: thresholds then apply to its probability

    def __post_init__(self) -> None:
        if not self.categories:
            raise PolicyError("cache: the policy needs at least one category")
        if not self.default_category:
            object.__setattr__(self, "default_category", next(iter(self.categories)))
        if self.default_category not in self.categories:
            raise PolicyError(
                f"cache: default_category {self.default_category!r} is not among the "
                f"categories {sorted(self.categories)}"
            )

    def category(self, name: str) -> CategoryPolicy:
        policy = self.categories.get(name)
        if policy is None:
            raise InvalidInputError(
                f"unknown cache category {name[:64]!r}; known: {', '.join(sorted(self.categories))}"
            )
        return policy

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], base_dir: Path | None = None) -> CachePolicy:
        """The policy in a config file's ``[cache]`` table (a relative ``scorer`` path is
        taken from ``base_dir``, the config file's folder)."""
        raw = dict(raw)
        if "scorer" in raw:
            if not isinstance(raw["scorer"], str) or not raw["scorer"]:
                raise PolicyError("cache: scorer must be the path of a trained pair scorer")
            raw["scorer"] = (base_dir or Path()) / raw["scorer"]
        try:
            categories = {
                name: CategoryPolicy(name, **_category_fields(fields))
                for name, fields in raw.pop("categories", {}).items()
            } or {DEFAULT_CATEGORY: CategoryPolicy(DEFAULT_CATEGORY)}
            load = LoadBounds(**raw.pop("load", {}))
            default = raw.pop("default_category", "")
            return cls(categories, default, load, **raw)
        except TypeError as exc:  # an unknown or misspelled key
            raise PolicyError(f"cache policy: {exc}") from None

    @classmethod
    def from_file(cls, path: Path | None) -> CachePolicy:
        """The ``[cache]`` table of a TOML config file; the defaults when there is none."""
        if path is None:
            return cls()
        return cls.from_mapping(config_table(path, "cache", PolicyError), path.parent)


def _category_fields(fields: dict[str, Any]) -> dict[str, Any]:
    fields = dict(fields)
    if "exemplars" in fields:
        exemplars = fields["exemplars"]
        if not isinstance(exemplars, list) or not all(isinstance(e, str) for e in exemplars):
            raise PolicyError("cache: exemplars must be a list of strings")
        fields["exemplars"] = tuple(e.strip() for e in exemplars if e.strip())
    return fields


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
