"""Checks on caller input, raising InvalidInputError or TooLargeError with a precise message."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

# The store's own limits, re-exported for the server's schemas.
from memos.memcube.filters import MAX_FILTER_TAGS as MAX_FILTER_TAGS
from memos.memcube.ids import ID_PATTERN as ID_PATTERN
from memos.memcube.models import in_utc_range as in_utc_range

from .errors import InvalidInputError, TooLargeError

NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_ID_CHARS = 128
MAX_TAGS = 64
MAX_TAG_CHARS = 128
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 16
MAX_INT32 = 2**31 - 1  # versions and counters are 32-bit columns
MAX_TTL_S = 100 * 365 * 24 * 3600


def namespace(name: str) -> str:
    if not isinstance(name, str) or not NAMESPACE_PATTERN.match(name):
        raise InvalidInputError(
            f"namespace must be 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            f"or digit; got {name!r}"
        )
    return name


def text(value: str, max_chars: int, field: str = "text") -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string")
    if not value.strip():
        raise InvalidInputError(f"{field} must not be empty")
    if len(value) > max_chars:
        raise TooLargeError(f"{field} has {len(value)} characters; the limit is {max_chars}")
    return value


def bounded_text(value: Any, limit: int, field: str, allow_blank: bool = False) -> str:
    """A string of at most ``limit`` characters, not blank unless ``allow_blank``; a
    longer one is invalid input (422), not a body too large."""
    if not isinstance(value, str) or (not allow_blank and not value.strip()):
        raise InvalidInputError(f"{field} must be a non-empty string")
    if len(value) > limit:
        raise InvalidInputError(f"{field} is {len(value)} characters long; the limit is {limit}")
    return value


# zero-width characters and bidirectional overrides: a name holding one looks like another
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def visible_name(value: Any, limit: int, field: str) -> str:
    """A name as ``bounded_text`` takes it, holding no invisible or direction-changing
    character (two names that look alike must be alike)."""
    bounded_text(value, limit, field)
    found = INVISIBLE.search(value)
    if found is not None:
        raise InvalidInputError(
            f"{field} holds the invisible character U+{ord(found.group()):04X}; names may not"
        )
    return value


def identifier(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{field} must be a non-empty string")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"{field} is longer than {MAX_ID_CHARS} characters")
    return value


def tags(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise InvalidInputError("tags must be a list of strings, not one string")
    result: list[str] = []
    for tag in values:
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidInputError("every tag must be a non-empty string")
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidInputError(
                f"tag {tag[:20]!r}... is longer than {MAX_TAG_CHARS} characters"
            )
        if tag not in result:
            result.append(tag)
    if len(result) > MAX_TAGS:
        raise InvalidInputError(f"at most {MAX_TAGS} tags, got {len(result)}")
    return tuple(result)


def metadata(value: dict[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError("metadata must be an object")
    if nesting_depth(value, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH:
        raise InvalidInputError(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata must be JSON-serializable: {exc}") from exc
    if len(encoded) > MAX_METADATA_BYTES:
        raise TooLargeError(f"metadata is {len(encoded)} bytes; the limit is {MAX_METADATA_BYTES}")
    return value


def importance(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"importance must be a number from 0 to 1, got {value!r}")
    return float(value)


def ttl(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidInputError(f"ttl_s must be a positive number of seconds, got {value!r}")
    if value > MAX_TTL_S:
        raise InvalidInputError(f"ttl_s must be at most {MAX_TTL_S} seconds (100 years)")
    return float(value)


def top_k(value: int, limit: int, field: str = "top_k") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{field} must be a positive integer, got {value!r}")
    if value > limit:
        raise InvalidInputError(f"{field} must be at most {limit}, got {value}")
    return value


def min_score(value: float | None, field: str = "min_score") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= value <= 1.0:
        raise InvalidInputError(f"{field} must be a number from -1 to 1, got {value!r}")
    return float(value)


def nesting_depth(value: Any, stop_after: int) -> int:
    """How deeply objects and lists nest in ``value`` (a scalar is 0), counted without
    recursion and given up once past ``stop_after``."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list | tuple):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop_after:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth) for child in children)
    return deepest


def aware_datetime(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{field} must be a date-time, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{field} needs a time zone (e.g. 2026-03-01T09:00:00Z)")
    if not in_utc_range(value):
        raise InvalidInputError(f"{field} {OUT_OF_RANGE}, got {value.isoformat()}")
    return value


OUT_OF_RANGE = "is out of range: in UTC it must fall within the years 1 to 9999"


def version(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT32:
        raise InvalidInputError(f"version must be an integer from 1 to {MAX_INT32}, got {value!r}")
    return value
