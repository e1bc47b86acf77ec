"""The pin hint a turn carries to the scheduler: which program it belongs to and how
long to keep its KV cache after it finishes.

It travels as flat keys of ``SamplingParams.extra_args``, so that it crosses vLLM's
process boundary unchanged and fits ``vllm serve``'s ``vllm_xargs`` (which takes scalar
values only): the program, the time to live, and (on a program's last turn only) that
the program ends with it, so that nothing keeps its context for a turn that will not
come.

A hint with ``prefix_tokens`` keeps a shared prefix instead (activation memory: a
rendered memory block many requests start with): only the context's first
``prefix_tokens`` tokens are kept, under their own share of the cache, and every request
that carries the same id uses and refreshes them; a time to live of 0 drops them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PROGRAM_KEY = "memos_program_id"
TTL_KEY = "memos_pin_ttl_s"
ENDS_KEY = "memos_program_ends"
PREFIX_KEY = "memos_pin_prefix_tokens"
MAX_PREFIX_TOKENS = 1 << 20
MAX_TTL_S = 600.0
MAX_PROGRAM_ID_CHARS = 128  # a caller's program id
# The scheduler's key for a program: the service scopes a caller's id by namespace
# (at most 64 characters and a colon), so the key may be longer than the id.
MAX_PROGRAM_KEY_CHARS = 256


class InvalidPinHintError(ValueError):
    """A pin hint that names no program or an impossible time to live."""


@dataclass(frozen=True)
class PinHint:
    program_id: str
    ttl_s: float
    ends: bool = False  # the program's last turn: no later turn will reuse its context
    prefix_tokens: int = 0  # > 0: a shared prefix of this many tokens (see above)

    def __post_init__(self) -> None:
        if not isinstance(self.program_id, str) or not self.program_id.strip():
            raise InvalidPinHintError(
                f"program_id must be a non-empty string, got {self.program_id!r}"
            )
        if len(self.program_id) > MAX_PROGRAM_KEY_CHARS:
            raise InvalidPinHintError(
                f"program_id is {len(self.program_id)} characters long; "
                f"the limit is {MAX_PROGRAM_KEY_CHARS}"
            )
        ttl = self.ttl_s
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
            raise InvalidPinHintError(f"ttl_s must be a number of seconds, got {ttl!r}")
        if not 0 <= ttl <= MAX_TTL_S:
            raise InvalidPinHintError(f"ttl_s must be between 0 and {MAX_TTL_S:g}, got {ttl!r}")
        if not isinstance(self.ends, bool):
            raise InvalidPinHintError(f"ends must be true or false, got {self.ends!r}")
        n = self.prefix_tokens
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_PREFIX_TOKENS:
            raise InvalidPinHintError(
                f"prefix_tokens must be a whole number from 0 to {MAX_PREFIX_TOKENS}, got {n!r}"
            )

    @property
    def shared(self) -> bool:
        """A shared prefix (activation memory) rather than a program's context."""
        return self.prefix_tokens > 0

    @classmethod
    def parse(cls, extra_args: Any) -> PinHint | None:
        """The hint in a request's extra args, None when it carries none."""
        if extra_args is None:
            return None
        if not isinstance(extra_args, dict):
            raise InvalidPinHintError(f"extra args are an object, got {type(extra_args).__name__}")
        if PROGRAM_KEY not in extra_args and TTL_KEY not in extra_args:
            return None
        if PROGRAM_KEY not in extra_args or TTL_KEY not in extra_args:
            raise InvalidPinHintError(f"a pin hint needs both {PROGRAM_KEY} and {TTL_KEY}")
        ends = extra_args.get(ENDS_KEY, 0)
        if isinstance(ends, bool) or ends not in (0, 1):
            raise InvalidPinHintError(f"{ENDS_KEY} must be 0 or 1, got {ends!r}")
        prefix = extra_args.get(PREFIX_KEY, 0)
        if isinstance(prefix, float) and prefix.is_integer():
            prefix = int(prefix)  # JSON numbers may arrive as floats
        return cls(extra_args[PROGRAM_KEY], extra_args[TTL_KEY], ends == 1, prefix)

    def as_extra_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {PROGRAM_KEY: self.program_id, TTL_KEY: float(self.ttl_s)}
        if self.ends:
            args[ENDS_KEY] = 1  # vllm_xargs carries numbers, not booleans
        if self.prefix_tokens:
            args[PREFIX_KEY] = self.prefix_tokens
        return args


def hint_of(extra_args: dict[str, Any] | None) -> PinHint | None:
    """The hint in a request's extra args; a malformed one is logged and ignored, since
    the scheduler must never fail a step over it (callers validate before sending)."""
    if not extra_args:
        return None
    try:
        return PinHint.parse(extra_args)
    except InvalidPinHintError as exc:
        log.warning("ignoring a malformed pin hint: %s", exc)
        return None


def request_hint(request: Any) -> PinHint | None:
    """The hint a vLLM request carries in its sampling parameters, if any."""
    params = request.sampling_params
    return hint_of(params.extra_args) if params is not None else None
