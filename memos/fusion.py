"""Fuse: several memories into one new memory, derived from each source's version; the
sources are marked merged into it. The new text is a deterministic merge of the
sources' sentences (in the order given, repeats dropped), or a summary the chat model
writes when asked."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from memos import validation as check
from memos.errors import InvalidInputError, NotFoundError, UnavailableError
from memos.llm.backend import ChatRequest
from memos.memcube.filters import MemoryFilter
from memos.memcube.models import Kind, utcnow
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin
from memos.records import Memory
from memos.scheduler.merge import fuse

if TYPE_CHECKING:
    from memos.core import MemOS
    from memos.llm.chat import ChatService

MIN_SOURCES, MAX_SOURCES = 2, 100
MODES = ("merge", "summary")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
SUMMARY_PROMPT = (
    "Rewrite these notes as one short note that keeps every fact (names, numbers, dates). "
    "Reply with the note only.\n\n"
)


def merged_text(texts: Sequence[str]) -> str:
    """Each text's sentences in order, a sentence already said (same words, any case or
    spacing) dropped; one line per source that still says something."""
    seen: set[str] = set()
    lines = []
    for text in texts:
        kept = []
        for sentence in _SENTENCE_END.split(text.strip()):
            key = " ".join(sentence.casefold().split())
            if key and key not in seen:
                seen.add(key)
                kept.append(sentence.strip())
        if kept:
            lines.append(" ".join(kept))
    return "\n".join(lines)


async def fuse_memories(
    memos: MemOS, chat: ChatService | None, namespace: str, memory_ids: Sequence[str],
    mode: str, origin: Origin,
) -> Memory:  # fmt: skip
    """The fused memory. Sources must be served plaintext memories of one user and agent."""
    check.namespace(namespace)
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    ids = list(memory_ids)
    if not MIN_SOURCES <= len(ids) <= MAX_SOURCES:
        raise InvalidInputError(f"memory_ids must hold {MIN_SOURCES}..{MAX_SOURCES} ids")
    if len(set(ids)) != len(ids):
        raise InvalidInputError("memory_ids must not repeat an id")
    texts = await anyio.to_thread.run_sync(_texts, memos, namespace, ids)
    if mode == "merge":
        text = merged_text(texts)
    else:
        if chat is None or not chat.ready:
            raise UnavailableError("a summary needs the chat model, which is not ready")
        notes = "\n".join(f"- {t}" for t in texts)
        request = ChatRequest(
            messages=[{"role": "user", "content": SUMMARY_PROMPT + notes}],
            max_tokens=256, temperature=0.0,
        )  # fmt: skip
        text = (await chat.complete(request, namespace)).text.strip()
        if not text:
            raise UnavailableError("the chat model wrote an empty summary; nothing was fused")
    new_id = await anyio.to_thread.run_sync(lambda: fuse(memos, namespace, ids, origin, text))
    return await anyio.to_thread.run_sync(lambda: memos.get(new_id, namespace=namespace))


def _texts(memos: MemOS, namespace: str, ids: list[str]) -> list[str]:
    with memos.db.reader() as session:
        found = CubeRepository(session).live_by_ids(namespace, ids, MemoryFilter(), utcnow())
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"memory {missing[0]!r} not found (or not served)")
    cubes = [found[i] for i in ids]
    if any(c.kind != Kind.PLAINTEXT.value for c in cubes):
        raise InvalidInputError("only plaintext memories are fused")
    if len({(c.user_id, c.agent_id) for c in cubes}) > 1:
        raise InvalidInputError("the memories belong to different users or agents")
    return [c.payload or "" for c in cubes]
