"""Liveness, readiness and the service's own Prometheus gauges."""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Controller, Request, Response, get
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import text

from memos.agents.chat import ChatService
from memos.core import MemOS

from .problems import problem


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", summary="The process is up")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", sync_to_thread=True, summary="The database answers and the indexes are loaded")
    def readyz(self, request: Request, memos: MemOS) -> Response:
        """200 once memories are served; ``chat`` says whether the language model is
        ``ready``, still ``loading``, or ``off``."""
        if not request.app.state.get("ready", False):
            return problem(request, 503, "indexes are still loading")
        try:
            with memos.db.reader() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means not ready
            return problem(request, 503, f"database unavailable: {type(exc).__name__}")
        chat: ChatService | None = request.app.state.get("chat")
        chat_state = "off" if chat is None else "ready" if chat.ready else "loading"
        return Response({"status": "ready", "chat": chat_state})


class IndexCollector(Collector):
    """Vectors held per namespace, read at scrape time from the service's MemOS."""

    def __init__(self) -> None:
        self.memos: MemOS | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "memos_index_vectors", "Vectors in the namespace's search index", labels=["namespace"]
        )
        if self.memos is not None:
            for namespace, size in self.memos.indexes.sizes().items():
                gauge.add_metric([namespace], size)
        yield gauge


_collector = IndexCollector()
REGISTRY.register(_collector)


def watch(memos: MemOS) -> None:
    _collector.memos = memos


class PinCollector(Collector):
    """The chat engine's KV cache and program pins, and agent programs' job completion
    times, read at scrape time."""

    def __init__(self) -> None:
        self.chat: ChatService | None = None

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        if self.chat is None:
            return
        for name, value in sorted(self.chat.stats().items()):
            yield GaugeMetricFamily(
                f"memos_kv_{name}", f"KV cache / pinning: {name.replace('_', ' ')}", value=value
            )
        times = self.chat.registry.job_times
        yield HistogramMetricFamily(
            "memos_program_job_seconds",
            "Agent programs' job completion time, first turn's start to last turn's end",
            buckets=times.cumulative(), sum_value=times.total_s,
        )  # fmt: skip


_pins = PinCollector()
REGISTRY.register(_pins)


def watch_chat(chat: ChatService | None) -> None:
    _pins.chat = chat
