"""Activation memory: a user's or agent's memories rendered as one block whose KV cache
the engine keeps (a shared prefix pinned under its own share of the cache and copied to
the host tier), so that chat requests starting with the block skip its prefill.

An activation is a MemCube of kind ``activation``: its payload is the rendered block,
its owner the user and agent it serves, each version ``derived_from`` the memory
versions it renders. Its engine state is the prefix ``activation:<namespace>:<id>``,
warmed by a one-token request and kept alive by every chat request that uses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from memos import validation as check
from memos.errors import InvalidInputError, NotFoundError, UnavailableError
from memos.lifecycle import tombstone
from memos.llm.backend import ChatRequest
from memos.llm.pin_hint import PinHint
from memos.memcube.filters import MemoryFilter
from memos.memcube.ids import is_id, new_id
from memos.memcube.models import (
    LIVE_STATES,
    CubeVersion,
    Kind,
    MemCube,
    Operation,
    State,
    is_served,
    utcnow,
)
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin, content_hash, version_row
from memos.records import Memory, NewMemory, memory_of

from .render import BlockMemory, fit, padding, render_block

if TYPE_CHECKING:
    from memos.core import MemOS
    from memos.llm.chat import ChatService
    from memos.scheduler.policy import SchedulerPolicy

log = logging.getLogger(__name__)

MAX_ACTIVATION_IDS = 256
WARM_QUESTION = "."  # the warm-up request's user turn: the block is what it computes
# The last tokens of a system message's rendering (its end marker) are not shared with a
# conversation that continues the message: the pinned prefix stops before them.
END_MARKER_TOKENS = 2
SELECTED_BY_IDS = "ids"  # an activation of the memories a caller chose
SELECTED_HOT = "hot"  # an activation the scheduler keeps of an owner's hottest memories


@dataclass(frozen=True)
class Activation:
    memory: Memory  # the cube: its text is the block
    sources: tuple[dict[str, Any], ...]  # the memory versions it renders: {id, version}
    prefix_tokens: int  # of the block's rendering; 0 until a model has counted them
    selection: str
    pad_tokens: int = 0  # filler after the text that ends the block on a KV block's edge

    @property
    def id(self) -> str:
        return self.memory.id

    @property
    def memory_ids(self) -> list[str]:
        return [s["id"] for s in self.sources]

    @property
    def prefix_id(self) -> str:
        return prefix_id(self.memory.namespace, self.memory.id)

    @property
    def prompt_text(self) -> str:
        """The block as the prompt carries it: the text and its filler."""
        return (self.memory.text or "") + padding(self.pad_tokens)


def prefix_id(namespace: str, activation_id: str) -> str:
    return f"activation:{namespace}:{activation_id}"


class ActivationMemory:
    def __init__(self, memos: MemOS, chat: ChatService | None, policy: SchedulerPolicy) -> None:
        self.memos = memos
        self.chat = chat
        self.policy = policy

    # reads ----------------------------------------------------------------------------

    def list(self, namespace: str) -> list[Activation]:
        check.namespace(namespace)
        return self.served(namespace)

    def served(self, namespace: str | None) -> list[Activation]:
        """The served activations of a namespace, or of every namespace (the scheduler's)."""
        with self.memos.db.reader() as session:
            cubes = CubeRepository(session).of_kind(namespace, Kind.ACTIVATION.value, LIVE_STATES)
            return [self.of_cube(session, c) for c in cubes]

    def get(self, namespace: str, activation_id: str) -> Activation:
        check.namespace(namespace)
        with self.memos.db.reader() as session:
            cube = self._cube(CubeRepository(session), namespace, activation_id)
            return self.of_cube(session, cube)

    def for_owner(
        self, namespace: str, user_id: str | None, agent_id: str | None,
        scope: MemoryFilter | None = None,
    ) -> Activation | None:  # fmt: skip
        """The served activation of this user and agent, if there is one (and, given a
        ``scope``, only when every memory it holds is served and within it: a block never
        answers with a memory the request could not have found)."""
        with self.memos.db.reader() as session:
            repo = CubeRepository(session)
            cube = self._owned(repo, namespace, user_id, agent_id)
            if cube is None:
                return None
            activation = self.of_cube(session, cube)
            if scope is not None:
                held = list(activation.memory_ids)
                if len(repo.live_by_ids(namespace, held, scope, utcnow())) != len(set(held)):
                    return None
            return activation

    def held(self, activation: Activation) -> dict[str, int]:
        """What the engine keeps of the block now (empty when it cannot tell)."""
        if self.chat is None or not self.chat.ready:
            return {}
        return self.chat.backend.prefix_held(activation.prefix_id)

    # writes ---------------------------------------------------------------------------

    def build(
        self, namespace: str, *, user_id: str | None = None, agent_id: str | None = None,
        memory_ids: list[str] | None = None, filters: MemoryFilter | None = None,
        origin: Origin, selection: str = SELECTED_BY_IDS,
    ) -> tuple[Activation, bool]:  # fmt: skip
        """Store the block of the chosen memories (``memory_ids``, or the hottest that
        ``filters`` matches) as this owner's activation: a new one, or a new version of
        the one it has. Returns it and whether it is new."""
        check.namespace(namespace)
        user_id = check.identifier(user_id, "user_id")
        agent_id = check.identifier(agent_id, "agent_id")
        if user_id is None and agent_id is None:
            raise InvalidInputError("an activation is an owner's: give user_id or agent_id")
        if (memory_ids is None) == (filters is None):
            raise InvalidInputError("give either memory_ids or filters")
        with self.memos.db.reader() as session:
            repo = CubeRepository(session)
            now = utcnow()
            if memory_ids is not None:
                chosen = self._chosen(repo, namespace, memory_ids, user_id, agent_id)
            else:
                assert filters is not None
                owner = replace(filters, user_id=user_id, agent_id=agent_id)
                chosen = repo.hottest(namespace, owner, now, self.policy.activation_max_memories)
            blocks = fit([_block_memory(c) for c in chosen], self.policy.activation_max_chars)
        if not blocks:
            raise InvalidInputError("no served memory matches: an activation needs at least one")
        return self._store(namespace, user_id, agent_id, blocks, origin, selection)

    def delete(self, namespace: str, activation_id: str, origin: Origin) -> Activation:
        """Tombstone the activation; the caller releases its engine state (``release``)."""
        check.namespace(namespace)
        with self.memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            cube = self._cube(repo, namespace, activation_id, for_update=True)
            activation = self.of_cube(session, cube)
            tombstone(repo, cube, utcnow(), origin)
        return activation

    def demote(self, namespace: str, activation_id: str, origin: Origin) -> bool:
        """Archive a served activation (its engine state is the caller's to release)."""
        with self.memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            cube = repo.get(namespace, activation_id, for_update=True)
            now = utcnow()
            if cube is None or not is_served(cube.state, cube.expires_at, now):
                return False
            cube.state, cube.updated_at = State.ARCHIVED.value, now
            cube.version += 1
            repo.add_version(CubeVersion(**version_row(cube, Operation.ARCHIVE, origin, now)))
        return True

    def record_use(self, namespace: str, activation_id: str) -> None:
        with self.memos.db.unit_of_work() as session:
            CubeRepository(session).count_access(activation_id, utcnow())

    def stale(self, activation: Activation) -> list[BlockMemory] | None:
        """The memories the activation should render now, when the block they render
        differs from its own (a source's text changed or it left, or, for the
        scheduler's, the owner's hottest changed); None when it is up to date."""
        namespace, memory = activation.memory.namespace, activation.memory
        with self.memos.db.reader() as session:
            repo = CubeRepository(session)
            now = utcnow()
            if activation.selection == SELECTED_HOT:
                owner = MemoryFilter(user_id=memory.user_id, agent_id=memory.agent_id,
                                     states=(State.ACTIVATED.value,))  # fmt: skip
                rows = repo.hottest(namespace, owner, now, self.policy.activation_max_memories)
            else:
                rows = list(repo.live_by_ids(namespace, activation.memory_ids, MemoryFilter(),
                                             now).values())  # fmt: skip
            wanted = fit([_block_memory(c) for c in rows], self.policy.activation_max_chars)
        if render_block(wanted) == activation.memory.text:
            return None  # a source's new version that changed no text (its state) is no change
        return wanted

    def rebuild(self, activation: Activation, memories: list[BlockMemory], origin: Origin) -> bool:
        """A new version rendering ``memories``; the activation is demoted instead when
        none is left. True when it was rebuilt."""
        memory = activation.memory
        if not memories:
            self.demote(memory.namespace, memory.id, origin)
            return False
        self._store(memory.namespace, memory.user_id, memory.agent_id, memories, origin,
                    activation.selection)  # fmt: skip
        return True

    # the engine -----------------------------------------------------------------------

    async def warm(self, activation: Activation) -> Activation:
        """Compute the block's KV cache and pin it (counting its tokens first, and the
        filler that ends it on a KV block's edge, if no model has yet); returns the
        activation with its token count."""
        chat = self.require_model()
        prefix, pad = await self._measure(chat, activation.memory.text or "")
        if (prefix, pad) != (activation.prefix_tokens, activation.pad_tokens):
            activation = self._set_prefix(activation, prefix, pad)
        request = ChatRequest(
            [{"role": "system", "content": activation.prompt_text},
             {"role": "user", "content": WARM_QUESTION}],
            max_tokens=1, temperature=0.0, seed=0,
        )  # fmt: skip
        async for _ in chat.backend.stream(request, self.hint(activation), 0):
            pass
        return activation

    @staticmethod
    async def _measure(chat: ChatService, text: str) -> tuple[int, int]:
        """The tokens of the block's prefix, and the filler tokens after ``text`` that
        make them a whole number of KV blocks (0 when the block size is unknown or the
        filler does not land exactly)."""

        async def prefix_of(content: str) -> int:
            tokens = await chat.backend.count_tokens([{"role": "system", "content": content}])
            return max(1, tokens - END_MARKER_TOKENS)

        prefix = await prefix_of(text)
        size = chat.backend.kv_block_size()
        if not size or prefix % size == 0:
            return prefix, 0
        pad = size - prefix % size
        padded = await prefix_of(text + padding(pad))
        return (padded, pad) if padded % size == 0 else (prefix, 0)

    async def release(self, activation: Activation) -> None:
        """Drop the block's pin and host copies (a one-token request with a TTL of 0)."""
        if self.chat is None or not self.chat.ready or not activation.prefix_tokens:
            return
        hint = PinHint(activation.prefix_id, 0.0, ends=True,
                       prefix_tokens=activation.prefix_tokens)  # fmt: skip
        request = ChatRequest([{"role": "system", "content": activation.prompt_text},
                               {"role": "user", "content": WARM_QUESTION}],
                              max_tokens=1, temperature=0.0, seed=0)  # fmt: skip
        async for _ in self.chat.backend.stream(request, hint, 0):
            pass

    def hint(self, activation: Activation) -> PinHint | None:
        """What a request starting with the block carries so the engine keeps it."""
        if not activation.prefix_tokens:
            return None
        return PinHint(activation.prefix_id, self.policy.activation_pin_ttl_s,
                       prefix_tokens=activation.prefix_tokens)  # fmt: skip

    # ----------------------------------------------------------------------------------

    def require_model(self) -> ChatService:
        """The chat model, ready; UnavailableError (503) when there is none or it loads."""
        if self.chat is None:
            raise UnavailableError("no language model is configured (MEMOS_LLM=off)")
        if not self.chat.ready:
            raise UnavailableError(f"the language model is {self.chat.state}; retry soon")
        return self.chat

    def _chosen(
        self, repo: CubeRepository, namespace: str, memory_ids: list[str],
        user_id: str | None, agent_id: str | None,
    ) -> list[MemCube]:  # fmt: skip
        if not isinstance(memory_ids, list) or not 0 < len(memory_ids) <= MAX_ACTIVATION_IDS:
            raise InvalidInputError(f"memory_ids must list 1 to {MAX_ACTIVATION_IDS} memory ids")
        for given in memory_ids:
            if not is_id(given):
                raise InvalidInputError(f"memory_ids: {str(given)[:40]!r} is not a memory id")
        rows = repo.live_by_ids(namespace, memory_ids, MemoryFilter(), utcnow())
        chosen = []
        for memory_id in dict.fromkeys(memory_ids):
            cube = rows.get(memory_id)
            if cube is None or cube.kind != Kind.PLAINTEXT.value:
                raise NotFoundError(f"memory {memory_id!r} not found among served memories")
            for field, wanted in (("user_id", user_id), ("agent_id", agent_id)):
                if wanted is not None and getattr(cube, field) != wanted:
                    raise InvalidInputError(
                        f"memory {memory_id!r} belongs to another {field.removesuffix('_id')}"
                    )
            chosen.append(cube)
        return chosen

    def _store(
        self, namespace: str, user_id: str | None, agent_id: str | None,
        memories: list[BlockMemory], origin: Origin, selection: str,
    ) -> tuple[Activation, bool]:  # fmt: skip
        text = render_block(memories)
        sources = [{"id": m.id, "version": m.version} for m in memories]
        meta = {"selection": selection, "prefix_tokens": 0}
        with self.memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            repo.ensure_namespace(namespace)
            now = utcnow()
            cube = self._owned(repo, namespace, user_id, agent_id, for_update=True)
            if cube is None:
                item = NewMemory(text=text, user_id=user_id, agent_id=agent_id, metadata=meta)
                row = self.memos.new_cube_row(new_id(), namespace, item,
                                              content_hash(Kind.ACTIVATION.value, text), None,
                                              now, Kind.ACTIVATION)  # fmt: skip
                row.state = State.ACTIVATED.value
                repo.insert_new([vars(row)], [version_row(row, Operation.PROMOTE, origin, now,
                                                          sources)])  # fmt: skip
                return Activation(memory_of(row), tuple(sources), 0, selection), True
            if cube.payload == text and cube.meta.get("selection") == selection:
                return self.of_cube(session, cube), False
            cube.payload, cube.meta = text, meta
            cube.content_hash = content_hash(Kind.ACTIVATION.value, text)
            cube.updated_at = now
            cube.version += 1
            repo.add_version(
                CubeVersion(**version_row(cube, Operation.UPDATE, origin, now, sources))
            )
            return Activation(memory_of(cube), tuple(sources), 0, selection), False

    def _set_prefix(self, activation: Activation, tokens: int, pad: int) -> Activation:
        """Record the block's token count and filler on the cube (no new version: they
        follow from the text and the model, they change nothing)."""
        with self.memos.db.unit_of_work() as session:
            cube = CubeRepository(session).get(activation.memory.namespace, activation.id,
                                               for_update=True)  # fmt: skip
            if cube is not None and cube.payload == activation.memory.text:
                cube.meta = {**cube.meta, "prefix_tokens": tokens, "pad_tokens": pad}
        return replace(activation, prefix_tokens=tokens, pad_tokens=pad)

    @staticmethod
    def _owned(
        repo: CubeRepository, namespace: str, user_id: str | None, agent_id: str | None,
        for_update: bool = False,
    ) -> MemCube | None:  # fmt: skip
        return repo.owned(namespace, Kind.ACTIVATION.value, LIVE_STATES, user_id, agent_id,
                          for_update=for_update)  # fmt: skip

    @staticmethod
    def _cube(
        repo: CubeRepository, namespace: str, activation_id: str, for_update: bool = False
    ) -> MemCube:
        cube = repo.get(namespace, activation_id, for_update=for_update) if is_id(
            activation_id
        ) else None  # fmt: skip
        if cube is None or cube.kind != Kind.ACTIVATION.value or cube.state not in LIVE_STATES:
            raise NotFoundError(f"activation {activation_id!r} not found")
        return cube

    @staticmethod
    def of_cube(session: Any, cube: MemCube) -> Activation:
        latest = CubeRepository(session).version(cube.id, cube.version)
        sources = tuple(latest.derived_from) if latest is not None else ()
        meta = cube.meta
        return Activation(memory_of(cube), sources, int(meta.get("prefix_tokens", 0)),
                          str(meta.get("selection", SELECTED_BY_IDS)),
                          int(meta.get("pad_tokens", 0)))  # fmt: skip


def _block_memory(cube: MemCube) -> BlockMemory:
    return BlockMemory(cube.id, cube.version, cube.payload or "", cube.created_at)
