"""Memories as the one system message chat puts before a conversation.

The rendering is canonical: the same memories always give the same text, oldest first
(by when they were stored, then id), so a memory added later extends the block instead
of reshuffling it, and the block's tokens repeat from request to request — which is
what lets the KV cache of a block be reused (activation memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

HEADER = "What you remember (one memory a line; use it when it helps answer):"
EXTRA_HEADER = "Also relevant:"


@dataclass(frozen=True)
class BlockMemory:
    """One memory as the block shows it."""

    id: str
    version: int
    text: str
    created_at: datetime


def canonical(memories: Iterable[BlockMemory]) -> list[BlockMemory]:
    """Each memory once, oldest first."""
    unique = {m.id: m for m in memories}
    return sorted(unique.values(), key=lambda m: (m.created_at, m.id))


def render_block(memories: Sequence[BlockMemory]) -> str:
    """The system message for ``memories`` (rendered in canonical order)."""
    return "\n".join([HEADER, *(_line(m) for m in canonical(memories))])


def fit(memories: Sequence[BlockMemory], max_chars: int) -> list[BlockMemory]:
    """The first of ``memories`` (most wanted first) whose block stays within
    ``max_chars``."""
    kept: list[BlockMemory] = []
    size = len(HEADER)
    for memory in memories:
        size += 1 + len(_line(memory))
        if size > max_chars:
            break
        kept.append(memory)
    return kept


def extend_block(block: str, extra: Sequence[BlockMemory]) -> str:
    """``block`` followed by memories it does not hold, in one system message; the block
    comes first and unchanged, so its tokens are still a prefix."""
    if not extra:
        return block
    return "\n".join([block, EXTRA_HEADER, *(_line(m) for m in canonical(extra))])


def padding(tokens: int) -> str:
    """Text of ``tokens`` tokens that means nothing (a newline, then " ." each): what
    makes a block end where a KV cache block does, so none of it is recomputed."""
    return "" if tokens <= 0 else "\n" + " ." * (tokens - 1)


def _line(memory: BlockMemory) -> str:
    return "- " + " ".join(memory.text.split())
