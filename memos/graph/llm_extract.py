"""Facts a language model finds in a memory's text, after the memory is stored.

With ``[graph] llm_extract = true`` and a chat model configured, each new memory is
queued; a background worker asks the model for the facts the text states, one JSON
object per line, and keeps only those grounded in the text: the subject, the object or
the value must appear in it, and the predicate becomes a short snake_case name. The
facts are asserted with the memory's version as their provenance, unless the memory has
changed or gone meanwhile. The queue is bounded: when the model falls behind, new
memories are not queued (and counted), never the adds slowed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .service import (
    MAX_NAME_CHARS,
    MAX_VALUE_CHARS,
    RESERVED_PREDICATES,
    FactInput,
    GraphMemory,
    MemoryRef,
)

log = logging.getLogger(__name__)

MAX_FACTS = 8  # per memory
MAX_PREDICATE = 64
QUEUE_CAPACITY = 1_000
SYSTEM = (
    "You extract facts from a note. Answer with one JSON object per line and nothing "
    'else: {"subject": "<a name in the note>", "predicate": "<a short relation>", '
    '"object": "<a name in the note>"}, or with "value" in place of "object" for a '
    "number, a status or a date. Answer NONE when the note states no fact."
)
EXAMPLE_NOTE = "Bob Chen took over the Larkspur service; it listens on port 8443."
EXAMPLE_REPLY = (
    '{"subject": "Larkspur", "predicate": "owner", "object": "Bob Chen"}\n'
    '{"subject": "Larkspur", "predicate": "port", "value": "8443"}'
)

Complete = Callable[[list[dict[str, str]]], Awaitable[str]]


@dataclass(frozen=True)
class Pending:
    namespace: str
    memory: MemoryRef
    text: str


def prompt(text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_NOTE},
        {"role": "assistant", "content": EXAMPLE_REPLY},
        {"role": "user", "content": text},
    ]


def parse_facts(reply: str, note: str) -> list[FactInput]:
    """The facts in a model's reply that the note grounds, at most MAX_FACTS, once each."""
    found: dict[tuple[str, str, str | None, str | None], FactInput] = {}
    folded = note.casefold()
    for line in reply.splitlines():
        start, end = line.find("{"), line.rfind("}")
        if start < 0 or end < start:
            continue
        try:
            item = json.loads(line[start : end + 1])
        except ValueError:
            continue
        fact = _grounded(item, folded)
        if fact is not None:
            found.setdefault((fact.subject, fact.predicate, fact.object, fact.value), fact)
        if len(found) == MAX_FACTS:
            break
    return list(found.values())


def _grounded(item: object, folded_note: str) -> FactInput | None:
    if not isinstance(item, dict):
        return None
    subject, predicate = item.get("subject"), item.get("predicate")
    target, value = item.get("object"), item.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not (isinstance(subject, str) and isinstance(predicate, str)):
        return None
    if (target is None) == (value is None):
        return None
    named = [subject, target if target is not None else value]
    if not all(isinstance(n, str) and n.strip() and n.casefold() in folded_note for n in named):
        return None  # the model named something the note does not say
    if named[0].strip().casefold() == named[1].strip().casefold():
        return None  # a thing related to itself says nothing
    relation = re.sub(r"[^a-z0-9]+", "_", predicate.casefold()).strip("_")[:MAX_PREDICATE]
    if not relation or relation in RESERVED_PREDICATES or len(subject) > MAX_NAME_CHARS:
        return None
    if target is not None and len(target) > MAX_NAME_CHARS:
        return None
    if value is not None and len(value) > MAX_VALUE_CHARS:
        return None
    return FactInput(subject.strip(), relation, target.strip() if target else None, value)


class ExtractionQueue:
    def __init__(self, graph: GraphMemory, capacity: int = QUEUE_CAPACITY) -> None:
        self._graph = graph
        self._pending: asyncio.Queue[Pending] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._capacity = capacity
        self.dropped = 0
        self.extracted = 0  # facts asserted

    def submit(self, namespace: str, memory: MemoryRef, text: str) -> bool:
        """Queue a stored memory (from any thread); False when no worker runs or the
        queue is full."""
        loop, pending = self._loop, self._pending
        if loop is None or pending is None or loop.is_closed():
            return False
        if pending.qsize() >= self._capacity:
            self.dropped += 1
            return False
        loop.call_soon_threadsafe(pending.put_nowait, Pending(namespace, memory, text))
        return True

    async def run(self, complete: Complete) -> None:
        """The worker: extract from each queued memory until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._pending = asyncio.Queue()
        try:
            while True:
                item = await self._pending.get()
                try:
                    await self.process(item, complete)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("fact extraction failed for memory %s", item.memory.id)
        finally:
            self._loop = self._pending = None

    async def process(self, item: Pending, complete: Complete) -> int:
        """Extract and assert one memory's facts; how many were asserted."""
        facts = parse_facts(await complete(prompt(item.text)), item.text)
        if not facts:
            return 0
        # nothing when the memory changed or went meanwhile: its text no longer says this
        asserted = await asyncio.to_thread(
            self._graph.assert_facts, item.namespace, facts, item.memory
        )
        self.extracted += len(asserted)
        return len(asserted)
