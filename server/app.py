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

from memos.core import MemOS
from memos.kernel import Kernel
from memos.llm.chat import ChatRequest, ChatService

from .activations import ActivationController
from .allow import allow_header_fix
from .auth import provide_tenant, require_metrics_token
from .cache import CacheController
from .chat import ChatController
from .compositions import CompositionController
from .graph import GraphController
from .health import HealthController, watch, watch_chat, watch_scheduler
from .keys import KeyController
from .memories import MemoryController
from .operations import OperationsController
from .parametric import JobController, ParametricController
from .problems import HANDLERS
from .scheduler import SchedulerController
from .strict import strict_input
from .tasks import TaskController
from .write_seq import write_seq_header

log = logging.getLogger(__name__)
EXTRACT_MAX_TOKENS = 200
EXTRACT_NAMESPACE = "memos-graph-extract"  # the extractor's requests are no tenant's


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    guards = [require_metrics_token]


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
    owns both. The chat engine starts in the background: memories are served at once.
    With ``background_jobs`` the MemScheduler runs its passes (memos/scheduler/)."""
    kernel = Kernel(memos, chat)

    def provide_chat() -> ChatService:
        assert chat is not None  # the chat routes are mounted only with a chat service
        return chat

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(memos.open)
        await anyio.to_thread.run_sync(kernel.parametric.recover)
        if chat is not None:
            await anyio.to_thread.run_sync(memos.tool_history.load_into, chat.registry.predictor)
        app.state.ready = True
        tasks = [asyncio.create_task(kernel.scheduler.run_forever())] if background_jobs else []
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
            try:
                await anyio.to_thread.run_sync(kernel.save_tool_durations)
            except Exception:
                log.exception("the tool durations learned since the last save are lost")
            await anyio.to_thread.run_sync(memos.indexes.save_changed)
            await anyio.to_thread.run_sync(kernel.parametric.close)

    watch(memos)
    watch_chat(chat)
    watch_scheduler(kernel.scheduler)
    prometheus = PrometheusConfig(app_name="memos", prefix="memos", group_path=True)
    app = Litestar(
        # Without a language model (MEMOS_LLM=off) the chat and activation routes are
        # not served, and the OpenAPI document does not list them.
        route_handlers=[
            MemoryController,
            GraphController,
            TaskController,
            CacheController,
            SchedulerController,
            OperationsController,
            CompositionController,
            ParametricController,
            JobController,
            *([ChatController, ActivationController] if chat is not None else []),
            KeyController,
            HealthController,
            MetricsController,
        ],
        dependencies={
            "memos": Provide(lambda: memos, use_cache=True, sync_to_thread=False),
            "kernel": Provide(lambda: kernel, use_cache=True, sync_to_thread=False),
            "chat": Provide(provide_chat, sync_to_thread=False),
            "tenant": Provide(provide_tenant, sync_to_thread=False),
        },
        exception_handlers=HANDLERS,
        before_request=strict_input,
        middleware=[prometheus.middleware, allow_header_fix, write_seq_header],
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
    app.state.kernel = kernel
    app.state.ready = False
    return app
