"""The pin hint a turn carries to the scheduler: which program it belongs to and how
long to keep its KV cache after it finishes.

It travels in ``SamplingParams.extra_args[PIN_KEY]`` so that it crosses vLLM's
process boundary (and ``vllm serve``'s ``vllm_xargs``) unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PIN_KEY = "memos_pin"
MAX_TTL_S = 600.0
MAX_PROGRAM_ID_CHARS = 128


class InvalidPinHintError(ValueError):
    """A pin hint that names no program or an impossible time to live."""


@dataclass(frozen=True)
class PinHint:
    program_id: str
    ttl_s: float

    def __post_init__(self) -> None:
        if not isinstance(self.program_id, str) or not self.program_id.strip():
            raise InvalidPinHintError(
                f"program_id must be a non-empty string, got {self.program_id!r}"
            )
        if len(self.program_id) > MAX_PROGRAM_ID_CHARS:
            raise InvalidPinHintError(
                f"program_id is longer than {MAX_PROGRAM_ID_CHARS} characters"
            )
        ttl = self.ttl_s
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
            raise InvalidPinHintError(f"ttl_s must be a number of seconds, got {ttl!r}")
        if not 0 <= ttl <= MAX_TTL_S:
            raise InvalidPinHintError(f"ttl_s must be between 0 and {MAX_TTL_S:g}, got {ttl!r}")

    @classmethod
    def parse(cls, raw: Any) -> PinHint:
        if not isinstance(raw, dict):
            raise InvalidPinHintError(f"a pin hint is an object, got {type(raw).__name__}")
        unknown = set(raw) - {"program_id", "ttl_s"}
        if unknown:
            raise InvalidPinHintError(f"unknown pin hint fields: {sorted(unknown)}")
        if "program_id" not in raw or "ttl_s" not in raw:
            raise InvalidPinHintError("a pin hint needs program_id and ttl_s")
        return cls(raw["program_id"], raw["ttl_s"])

    def as_extra_args(self) -> dict[str, Any]:
        return {PIN_KEY: {"program_id": self.program_id, "ttl_s": float(self.ttl_s)}}


def hint_of(extra_args: dict[str, Any] | None) -> PinHint | None:
    """The hint in a request's extra args; a malformed one is logged and ignored, since
    the scheduler must never fail a step over it (callers validate before sending)."""
    if not extra_args or PIN_KEY not in extra_args:
        return None
    try:
        return PinHint.parse(extra_args[PIN_KEY])
    except InvalidPinHintError as exc:
        log.warning("ignoring a malformed pin hint: %s", exc)
        return None
