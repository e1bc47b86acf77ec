"""/v1/cache: look up, store, invalidate, and read the semantic cache's stats and policy.
Thin: validation and work live in memos.cache; every call is scoped to the key's
namespace."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Response, delete, get, post
from msgspec import Meta

from memos.cache import MAX_MEMORY_IDS, MAX_NAME_CHARS, CachedAnswer
from memos.cache import MAX_TTL_S as MAX_CACHE_TTL_S
from memos.core import MemOS

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import MemoryId, Strict

Category = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)]


class LookupIn(Strict):
    query: str
    category: Category | None = None


class StoreIn(Strict):
    query: str
    response: str
    category: Category | None = None
    model: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)] | None = None
    memory_ids: Annotated[list[MemoryId], Meta(max_length=MAX_MEMORY_IDS)] = []
    ttl_s: Annotated[float, Meta(gt=0, le=MAX_CACHE_TTL_S)] | None = None


class EntryOut(Strict):
    id: str
    category: str
    query: str
    response: str
    model: str | None
    memory_ids: list[str]
    created_at: datetime
    expires_at: datetime
    hits: int

    @classmethod
    def of(cls, answer: CachedAnswer) -> EntryOut:
        return cls(
            id=answer.id, category=answer.category, query=answer.query,
            response=answer.response, model=answer.model, memory_ids=answer.memory_ids,
            created_at=answer.created_at, expires_at=answer.expires_at, hits=answer.hits,
        )  # fmt: skip


class LookupOut(Strict):
    hit: bool
    category: str
    threshold: float
    similarity: float | None
    entry: EntryOut | None


class StoreOut(Strict):
    id: str
    category: str
    expires_at: datetime
    evicted: list[str]


class DeletedOut(Strict):
    deleted: int


class CacheController(TenantController):
    path = "/v1/cache"
    tags = ["cache"]

    @post(
        "/lookup",
        status_code=200,
        sync_to_thread=True,
        summary="Look up a cached answer",
        responses=problems(),
    )
    def lookup(self, data: LookupIn, tenant: Tenant, memos: MemOS) -> LookupOut:
        """``hit`` with the entry when a live entry of the query's category is at least
        the category's (load-adjusted) threshold similar; its similarity either way."""
        found = memos.cache.lookup(tenant.namespace, data.query, data.category)
        return LookupOut(
            hit=found.hit, category=found.category, threshold=found.threshold,
            similarity=found.similarity,
            entry=EntryOut.of(found.answer) if found.answer is not None else None,
        )  # fmt: skip

    @post(
        "/", status_code=201, sync_to_thread=True, summary="Store an answer", responses=problems()
    )
    def store(self, data: StoreIn, tenant: Tenant, memos: MemOS) -> StoreOut:
        stored = memos.cache.store(
            tenant.namespace, data.query, data.response, category=data.category,
            model=data.model, memory_ids=data.memory_ids, ttl_s=data.ttl_s,
        )  # fmt: skip
        return StoreOut(
            id=stored.id, category=stored.category, expires_at=stored.expires_at,
            evicted=stored.evicted,
        )  # fmt: skip

    @get(
        "/entries/{entry_id:str}",
        sync_to_thread=True,
        summary="One cached answer",
        responses=problems(404),
    )
    def get_entry(self, entry_id: str, tenant: Tenant, memos: MemOS) -> EntryOut:
        return EntryOut.of(memos.cache.get(tenant.namespace, entry_id))

    @delete("/entries/{entry_id:str}", status_code=204, sync_to_thread=True,
            summary="Invalidate one cached answer", responses=problems(404))  # fmt: skip
    def delete_entry(self, entry_id: str, tenant: Tenant, memos: MemOS) -> None:
        memos.cache.invalidate_entry(tenant.namespace, entry_id)

    @delete("/categories/{category:str}", status_code=200, sync_to_thread=True,
            summary="Invalidate a category's cached answers", responses=problems(404))  # fmt: skip
    def delete_category(self, category: str, tenant: Tenant, memos: MemOS) -> Response[DeletedOut]:
        count = memos.cache.invalidate_category(tenant.namespace, category)
        return Response(DeletedOut(deleted=count), status_code=200)

    @delete("/", status_code=200, sync_to_thread=True,
            summary="Invalidate every cached answer of the namespace",
            responses=problems())  # fmt: skip
    def delete_all(self, tenant: Tenant, memos: MemOS) -> Response[DeletedOut]:
        count = memos.cache.invalidate_namespace(tenant.namespace)
        return Response(DeletedOut(deleted=count), status_code=200)

    @get(
        "/stats",
        sync_to_thread=False,
        summary="Hits, misses, evictions and latency",
        responses=problems(),
    )
    def stats(self, tenant: Tenant, memos: MemOS) -> dict[str, Any]:
        return memos.cache.stats.snapshot(tenant.namespace)

    @get(
        "/policy",
        sync_to_thread=False,
        summary="The cache policy, as configured and now",
        responses=problems(),
    )
    def policy(self, memos: MemOS) -> dict[str, Any]:
        return memos.cache.effective_policy()
