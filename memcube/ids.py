"""Time-sortable identifiers (UUID version 7, RFC 9562), monotonic within a process."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

_COUNTER_BITS = 74  # the 12 + 62 bits around the version and variant fields
_lock = threading.Lock()
_last_ms = -1
_last_counter = 0


def new_id() -> str:
    """A UUIDv7 string: 48 bits of Unix milliseconds, then a 74-bit counter that starts
    random in each millisecond and counts up within it, so ids sort in creation order."""
    global _last_ms, _last_counter
    with _lock:
        unix_ms = time.time_ns() // 1_000_000
        if unix_ms <= _last_ms:
            unix_ms, counter = _last_ms, _last_counter + 1
            if counter >> _COUNTER_BITS:  # counter exhausted: borrow the next millisecond
                unix_ms, counter = unix_ms + 1, 0
        else:
            # The top bit stays clear so a millisecond has room for 2**73 more ids.
            counter = int.from_bytes(os.urandom(10), "big") & ((1 << (_COUNTER_BITS - 1)) - 1)
        _last_ms, _last_counter = unix_ms, counter
    rand_a, rand_b = counter >> 62, counter & ((1 << 62) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0x2 << 62 | rand_b
    return str(uuid.UUID(int=value))


ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))


def is_id(value: object) -> bool:
    """Whether ``value`` is an id in the form ``new_id`` writes (lower-case hex UUID)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
