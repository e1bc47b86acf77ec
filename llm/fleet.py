"""A fleet of ``vllm serve`` servers behind one chat backend.

An agent program's turns go back to the server that ran its previous turn, where its
pinned KV cache is (affinity), unless that server is down or has more than
``max_in_flight`` requests running; other requests go to the least-loaded server. A
server that fails is taken out, probed every ``probe_s`` and brought back when it
answers again. A request it was running continues on another server: from the start
when nothing had been sent yet, else from the text already sent (the other server
prefills the prompt and that text, and goes on), so the client never sees the failure.

Adapters and activation memories need no placement of their own: each member loads an
adapter when a request routed to it first needs one, and an activation's prefix is
pinned where requests naming it are routed (affinity by the prefix's id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from memos.errors import UnavailableError

from .backend import ChatChunk, ChatRequest
from .pin_hint import PinHint
from .remote import RemoteBackend
from .ttl_policy import UNKNOWN_CACHE, CacheState

log = logging.getLogger(__name__)

ROUTINGS = ("affinity", "round_robin")
MAX_AFFINITIES = 100_000  # programs remembered; the oldest are forgotten past this


@dataclass
class Member:
    """One server of the fleet and what the router knows of it."""

    backend: RemoteBackend
    up: bool = False
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    down_since: float = 0.0

    @property
    def url(self) -> str:
        return self.backend.base_url


class FleetBackend:
    def __init__(
        self, urls: list[str], model_name: str, *, routing: str = "affinity",
        max_in_flight: int = 8, probe_s: float = 2.0, timeout_s: float = 600,
    ) -> None:  # fmt: skip
        if routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {', '.join(ROUTINGS)}, got {routing!r}")
        self.model_name = model_name
        self.routing = routing
        self.max_in_flight = max_in_flight
        self.probe_s = probe_s
        self.members = [Member(RemoteBackend(url, model_name, timeout_s)) for url in urls]
        self.failovers = 0  # requests that moved to another server after theirs failed
        self._affinity: dict[str, int] = {}  # program or prefix id -> member index
        self._next = 0  # round robin's next member
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._prober: threading.Thread | None = None
        self._started = False

    # lifecycle -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return any(m.up for m in self.members)

    @property
    def state(self) -> str:
        if self.ready:
            return "ready"
        return "restarting" if self._started else "loading"

    def start(self) -> None:
        """Connect to every server that answers; fails only when none does (the others
        join as they come up)."""
        for member in self.members:
            self._probe(member)
        self._started = True
        self._prober = threading.Thread(target=self._probe_down, name="fleet-probe", daemon=True)
        self._prober.start()
        if not self.ready:
            raise UnavailableError(
                "no vLLM server of the fleet answers: " + ", ".join(m.url for m in self.members)
            )

    def close(self) -> None:
        self._stop.set()
        if self._prober is not None:
            self._prober.join(timeout=10)
        for member in self.members:
            member.backend.close()
            member.up = False

    def _probe(self, member: Member) -> bool:
        try:
            member.backend.start()
        except UnavailableError:
            return False
        if not member.up:
            log.info("fleet: %s is serving", member.url)
        member.up = True
        return True

    def _probe_down(self) -> None:
        while not self._stop.wait(self.probe_s):
            for member in self.members:
                if not member.up:
                    self._probe(member)

    def _take_out(self, member: Member, why: Exception) -> None:
        with self._lock:
            if member.up:
                log.warning("fleet: %s taken out (%s); probing it every %g s",
                            member.url, why, self.probe_s)  # fmt: skip
            member.up = False
            member.failures += 1
            member.down_since = time.monotonic()

    # routing -------------------------------------------------------------------------------

    def route(self, key: str | None, exclude: frozenset[int] | set[int] = frozenset()) -> int:
        """The member a request goes to (and is remembered for ``key``)."""
        with self._lock:
            live = [i for i, m in enumerate(self.members) if m.up and i not in exclude]
            if not live:
                raise UnavailableError("no vLLM server of the fleet is up; retry in a few seconds",
                                       retry_after_s=int(self.probe_s) + 1)  # fmt: skip
            if self.routing == "round_robin":
                chosen = live[self._next % len(live)]
                self._next += 1
            else:
                chosen = self._affine(key, live)
            if key is not None:
                self._affinity.pop(key, None)
                self._affinity[key] = chosen
                if len(self._affinity) > MAX_AFFINITIES:
                    self._affinity.pop(next(iter(self._affinity)))
            return chosen

    def _affine(self, key: str | None, live: list[int]) -> int:
        home = self._affinity.get(key) if key is not None else None
        if home in live and self.members[home].in_flight < self.max_in_flight:
            return home
        return min(live, key=lambda i: (self.members[i].in_flight, self.members[i].requests))

    # requests ------------------------------------------------------------------------------

    async def stream(
        self, request: ChatRequest, hint: PinHint | None, priority: int
    ) -> AsyncIterator[ChatChunk]:
        key = hint.program_id if hint is not None else None
        sent: list[str] = []  # text already yielded, for a continuation elsewhere
        tried: set[int] = set()
        while True:
            index = self.route(key, tried)
            member = self.members[index]
            attempt = request if not sent else _continuation(request, "".join(sent), len(sent))
            member.in_flight += 1
            member.requests += 1
            try:
                async for chunk in member.backend.stream(attempt, hint, priority):
                    if chunk.finished and sent:
                        chunk.completion_tokens += len(sent)
                    elif chunk.text:
                        sent.append(chunk.text)
                    yield chunk
                return
            except UnavailableError as exc:
                self._take_out(member, exc)
                tried.add(index)
                self.failovers += 1
                if len(tried) == len(self.members):
                    raise
            finally:
                member.in_flight -= 1

    async def count_tokens(self, messages: list[dict[str, str]]) -> int:
        member = self.members[self.route(None)]
        return await member.backend.count_tokens(messages)

    def unload_adapter(self, adapter_id: int) -> bool:
        """Unload an adapter from every server that loaded it."""
        return any([m.backend.unload_adapter(adapter_id) for m in self.members])

    # what the chat service asks ----------------------------------------------------------------

    def cache_state(self) -> CacheState:
        return UNKNOWN_CACHE

    def kv_block_size(self) -> int | None:
        return None

    def prefix_held(self, prefix_id: str) -> dict[str, int]:
        return {}

    def stats(self) -> dict[str, float]:
        return {"fleet_servers_up": sum(m.up for m in self.members),
                "fleet_failovers": self.failovers}  # fmt: skip

    def servers(self) -> list[dict[str, object]]:
        """Each server: its URL, whether it is up, and its load."""
        return [
            {"url": m.url, "state": "up" if m.up else "down", "in_flight": m.in_flight,
             "requests": m.requests, "failures": m.failures}
            for m in self.members
        ]  # fmt: skip


def _continuation(request: ChatRequest, sent: str, sent_chunks: int) -> ChatRequest:
    """The same request, asking another server to go on from the text already sent."""
    messages = [*request.messages, {"role": "assistant", "content": sent}]
    return replace(request, messages=messages, continues=True,
                   max_tokens=max(1, request.max_tokens - sent_chunks))  # fmt: skip

