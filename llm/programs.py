"""Agent programs: what the service knows about each one, and the order they go in.

A program is one agent run: turns on the LLM with a tool call between them. The
registry gives each program its arrival rank (program-level first-come-first-served:
a program already in flight goes before one that arrived later), decides each turn's
pin hint from the TTL policy, and keeps the per-turn record that /v1/programs shows.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from memos.histogram import SecondsHistogram

from .pin_hint import MAX_PROGRAM_ID_CHARS, MAX_PROGRAM_KEY_CHARS, PinHint
from .tool_durations import ToolDurationPredictor
from .ttl_policy import UNKNOWN_CACHE, CacheState, TtlPolicy

MAX_TURN = 100_000
MAX_TOOL_NAME_CHARS = 128
MAX_TOOL_SECONDS = 24 * 3600.0  # a reported tool duration beyond a day is a mistake

MAX_PROGRAMS = 10_000  # finished programs beyond this are forgotten, oldest first
# upper bounds, in seconds, of the job completion time histogram's buckets
JOB_TIME_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class UnknownProgramError(LookupError):
    pass


class ProgramHintError(ValueError):
    """A turn that names its program, turn number or next tool wrongly."""


@dataclass
class TurnRecord:
    turn: int
    next_tool: str | None
    ttl_s: float
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    started_at: float = 0.0
    seconds: float = 0.0
    ended_at: float | None = None  # when its last token came: the tool call starts there


@dataclass
class Program:
    id: str
    rank: int  # arrival order: lower goes first
    created_at: float
    turns: list[TurnRecord] = field(default_factory=list)
    tool_seconds: dict[str, float] = field(default_factory=dict)
    finished: bool = False
    seconds: float | None = None  # job completion time: first turn's start to last's end

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rank": self.rank,
            "finished": self.finished,
            "seconds": self.seconds,
            "turns": [t.__dict__ for t in self.turns],
            "prompt_tokens": sum(t.prompt_tokens for t in self.turns),
            "cached_tokens": sum(t.cached_tokens for t in self.turns),
        }


@dataclass(frozen=True)
class TurnTicket:
    """What a turn goes to the engine with."""

    program_id: str
    turn: int
    priority: int
    hint: PinHint


class ProgramRegistry:
    def __init__(self, policy: TtlPolicy | None = None, pinning: bool = True) -> None:
        self.policy = policy or TtlPolicy(ToolDurationPredictor())
        self.pinning = pinning
        self._programs: dict[str, Program] = {}
        self._ranks = itertools.count()
        self._lock = threading.Lock()
        # finished programs' job completion times
        self.job_times = SecondsHistogram(JOB_TIME_BUCKETS)

    @property
    def predictor(self) -> ToolDurationPredictor:
        return self.policy.predictor

    def get(self, program_id: str) -> Program:
        with self._lock:
            program = self._programs.get(program_id)
        if program is None:
            raise UnknownProgramError(f"program {program_id!r} is unknown")
        return program

    def begin_turn(
        self, program_id: str, turn: int | None, next_tool: str | None,
        cache: CacheState = UNKNOWN_CACHE, ttl_s: float | None = None,
        tool_seconds: float | None = None, namespace: str | None = None,
    ) -> TurnTicket:  # fmt: skip
        """Open a turn. Turn 0 (or a new id with no turn given) starts a program; a later
        turn must follow the program's last one. ``cache`` is the engine's state the
        policy weighs a pin against; ``ttl_s`` overrides the policy.

        A later turn also ends the tool call the last turn named: its duration is the
        time since that turn's last token, or ``tool_seconds`` when the caller knows it,
        and it teaches the predictor before this turn's TTL is chosen. Durations are
        kept per ``namespace`` (the caller's tenant) beside every namespace's."""
        check_hint_fields(program_id, turn, next_tool, ttl_s, max_id_chars=MAX_PROGRAM_KEY_CHARS)
        check_tool_seconds(tool_seconds)
        now = time.monotonic()
        with self._lock:
            program = self._programs.get(program_id)
            if program is None:
                if turn not in (None, 0):
                    raise UnknownProgramError(
                        f"program {program_id!r} is unknown: its first turn must be turn 0"
                    )
                program = Program(program_id, next(self._ranks), now)
                self._programs[program_id] = program
                self._forget_old()
            expected = len(program.turns)
            if turn is None:
                turn = expected
            elif turn != expected:
                raise ProgramHintError(
                    f"program {program_id!r} is at turn {expected}, got turn {turn}"
                )
            called = self._called_tool(program, tool_seconds, now)
            if turn > 0:
                self.policy.record_returned(turn - 1)
        if called is not None:
            self._observe_tool(program, *called, namespace)
        if ttl_s is None:
            ttl_s = self.policy.ttl(next_tool, turn, cache, namespace) if self.pinning else 0.0
        if next_tool is not None:
            self.policy.record_left(turn)
        record = TurnRecord(turn, next_tool, ttl_s, started_at=now)
        with self._lock:
            program.turns.append(record)
            program.finished = next_tool is None
        # A last turn nobody asked to pin ends the program: its context is kept nowhere.
        ends = next_tool is None and ttl_s == 0
        return TurnTicket(program_id, turn, program.rank, PinHint(program_id, ttl_s, ends))

    def end_turn(
        self, ticket: TurnTicket, prompt_tokens: int, cached_tokens: int, output_tokens: int
    ) -> None:
        program = self.get(ticket.program_id)
        record = program.turns[ticket.turn]
        record.prompt_tokens = prompt_tokens
        record.cached_tokens = cached_tokens
        record.output_tokens = output_tokens
        now = time.monotonic()
        record.seconds = now - record.started_at
        record.ended_at = now
        if record.next_tool is None:  # the program's last turn
            with self._lock:
                program.seconds = now - program.created_at
                self.job_times.observe(program.seconds)

    @staticmethod
    def _called_tool(
        program: Program, tool_seconds: float | None, now: float
    ) -> tuple[str, float] | None:
        """The tool the program's last turn called and how long it took, when known."""
        last = program.turns[-1] if program.turns else None
        if last is None or last.next_tool is None:
            if tool_seconds is not None:
                raise ProgramHintError(
                    "tool_seconds belongs to a turn that follows a tool call (the last turn "
                    "named no next_tool)"
                )
            return None
        if tool_seconds is not None:
            return last.next_tool, tool_seconds
        if last.ended_at is None:  # the last turn is still answering
            return None
        return last.next_tool, now - last.ended_at

    def _observe_tool(
        self, program: Program, tool: str, seconds: float, namespace: str | None
    ) -> None:
        self.predictor.observe(tool, seconds, namespace)
        with self._lock:
            program.tool_seconds[tool] = program.tool_seconds.get(tool, 0.0) + seconds

    def _forget_old(self) -> None:
        if len(self._programs) <= MAX_PROGRAMS:
            return
        for program_id in [p.id for p in self._programs.values() if p.finished][
            : len(self._programs) - MAX_PROGRAMS
        ]:
            del self._programs[program_id]


def check_tool_seconds(tool_seconds: Any) -> None:
    if tool_seconds is None:
        return
    if (
        isinstance(tool_seconds, bool)
        or not isinstance(tool_seconds, int | float)
        or not math.isfinite(tool_seconds)
        or not 0 <= tool_seconds <= MAX_TOOL_SECONDS
    ):
        raise ProgramHintError(
            f"tool_seconds must be a number of seconds from 0 to {MAX_TOOL_SECONDS:g}, "
            f"got {tool_seconds!r}"
        )


def check_hint_fields(
    program_id: Any, turn: Any, next_tool: Any, ttl_s: Any = None,
    max_id_chars: int = MAX_PROGRAM_ID_CHARS,
) -> None:  # fmt: skip
    """Raise ``ProgramHintError`` (or ``InvalidPinHintError`` for the TTL) naming the
    first field that is wrong."""
    if not isinstance(program_id, str) or not program_id.strip():
        raise ProgramHintError(f"program_id must be a non-empty string, got {program_id!r}")
    if len(program_id) > max_id_chars:
        raise ProgramHintError(
            f"program_id is {len(program_id)} characters long; the limit is {max_id_chars}"
        )
    if turn is not None and (
        isinstance(turn, bool) or not isinstance(turn, int) or not 0 <= turn <= MAX_TURN
    ):
        raise ProgramHintError(f"turn must be a whole number from 0 to {MAX_TURN}, got {turn!r}")
    if next_tool is not None and (not isinstance(next_tool, str) or not next_tool.strip()):
        raise ProgramHintError(f"next_tool must be a non-empty string, got {next_tool!r}")
    if next_tool is not None and len(next_tool) > MAX_TOOL_NAME_CHARS:
        raise ProgramHintError(
            f"next_tool is {len(next_tool)} characters long; the limit is {MAX_TOOL_NAME_CHARS}"
        )
    if ttl_s is not None:
        PinHint(program_id, ttl_s)  # raises InvalidPinHintError with the reason
