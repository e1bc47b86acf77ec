"""The Litestar application: controllers, dependencies, errors, metrics, background jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from memos.agents.chat import ChatRequest, ChatService
from memos.core import MemOS

from .allow import allow_header_fix
from .auth import provide_tenant, require_metrics_token
from .cache import CacheController
from .chat import ChatController
from .graph import GraphController
from .health import HealthController, watch, watch_chat
from .keys import KeyController
from .memories import MemoryController
from .problems import HANDLERS
from .strict import strict_input
from .tasks import TaskController

log = logging.getLogger(__name__)
EXTRACT_MAX_TOKENS = 200
EXTRACT_NAMESPACE = "memos-graph-extract"  # the extractor's requests are no tenant's


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    guards = [require_metrics_token]


async def _maintenance(memos: MemOS, chat: ChatService | None) -> None:
    """Expire memories and cached answers past their TTL, purge tombstones, save the tool
    durations chat learned, and snapshot changed indexes."""
    interval = memos.settings.maintenance_interval_s
    since_snapshot = 0.0
    while True:
        await asyncio.sleep(interval)
        try:
            expired = await anyio.to_thread.run_sync(memos.expire_due)
            purged = await anyio.to_thread.run_sync(memos.purge_deleted)
            uncached = await anyio.to_thread.run_sync(memos.cache.expire_due)
            if chat is not None:
                await anyio.to_thread.run_sync(_save_tool_calls, memos, chat)
            if expired or purged or uncached:
                log.info("maintenance: %d expired, %d purged, %d cached answers expired",
                         expired, purged, uncached)  # fmt: skip
            since_snapshot += interval
            if since_snapshot >= memos.settings.snapshot_interval_s:
                since_snapshot = 0.0
                await anyio.to_thread.run_sync(memos.indexes.save_changed)
        except Exception:
            log.exception("maintenance pass failed; retrying next interval")


def _save_tool_calls(memos: MemOS, chat: ChatService) -> None:
    memos.tool_history.save_from(chat.registry.predictor)


def _completer(chat: ChatService) -> Callable[[list[dict[str, str]]], Awaitable[str]]:
    """The chat model as the fact extractor calls it: greedy, short, after it is ready."""

    async def complete(messages: list[dict[str, str]]) -> str:
        while not chat.ready:
            await asyncio.sleep(1.0)
        request = ChatRequest(messages, max_tokens=EXTRACT_MAX_TOKENS, temperature=0.0, seed=0)
        return (await chat.complete(request, EXTRACT_NAMESPACE)).text

    return complete


async def _start_engine(chat: ChatService) -> None:
    try:
        await anyio.to_thread.run_sync(chat.backend.start)
    except Exception:
        log.exception("the language model did not start; chat completions answer 503")


def create_app(
    memos: MemOS, *, background_jobs: bool = True, chat: ChatService | None = None
) -> Litestar:
    """An app serving ``memos`` (and chat completions when ``chat`` is given); the caller
    owns both. The chat engine starts in the background: memories are served at once."""

    def provide_chat() -> ChatService:
        assert chat is not None  # the chat routes are mounted only with a chat service
        return chat

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(memos.open)
        if chat is not None:
            await anyio.to_thread.run_sync(memos.tool_history.load_into, chat.registry.predictor)
        app.state.ready = True
        tasks = [asyncio.create_task(_maintenance(memos, chat))] if background_jobs else []
        if chat is not None and not chat.ready:
            tasks.append(asyncio.create_task(_start_engine(chat)))
        if memos.extraction is not None:
            if chat is None:
                log.warning("[graph] llm_extract is on but no chat model is configured")
            else:
                tasks.append(asyncio.create_task(memos.extraction.run(_completer(chat))))
        try:
            yield
        finally:
            app.state.ready = False
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if chat is not None:
                try:
                    await anyio.to_thread.run_sync(_save_tool_calls, memos, chat)
                except Exception:
                    log.exception("the tool durations learned since the last save are lost")
            await anyio.to_thread.run_sync(memos.indexes.save_changed)

    watch(memos)
    watch_chat(chat)
    prometheus = PrometheusConfig(app_name="memos", prefix="memos", group_path=True)
    app = Litestar(
        # Without a language model (MEMOS_LLM=off) the chat routes are not served, and
        # the OpenAPI document does not list them.
        route_handlers=[
            MemoryController,
            GraphController,
            TaskController,
            CacheController,
            *([ChatController] if chat is not None else []),
            KeyController,
            HealthController,
            MetricsController,
        ],
        dependencies={
            "memos": Provide(lambda: memos, use_cache=True, sync_to_thread=False),
            "chat": Provide(provide_chat, sync_to_thread=False),
            "tenant": Provide(provide_tenant, sync_to_thread=False),
        },
        exception_handlers=HANDLERS,
        before_request=strict_input,
        middleware=[prometheus.middleware, allow_header_fix],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="MemOS",
            version="0.1.0",
            description="Memory operating system for LLM agents.",
            path="/schema",
        ),
        request_max_body_size=memos.settings.max_request_bytes,
    )
    app.state.memos = memos
    app.state.metrics_token = memos.settings.metrics_token
    app.state.chat = chat
    app.state.ready = False
    return app
