"""Liveness, readiness and the service's own Prometheus gauges."""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Controller, Request, Response, get
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import REGISTRY, Collector

from memos.core import MemOS
from memos.errors import STORAGE_RETRY_AFTER_S
from memos.llm.chat import ChatService
from memos.replication import ChangeFollower
from memos.scheduler import MemScheduler

from .problems import problem


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", summary="The process is up")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", sync_to_thread=True, summary="Memories are served and can be written")
    def readyz(self, request: Request, memos: MemOS) -> Response:
        """200 once memories are served; 503 while indexes load, the database does not
        answer, or it refuses writes (reads still work then). ``chat`` says whether the
        language model is ``ready``, ``loading``, ``restarting`` after a failure, or
        ``off``."""
        if not request.app.state.get("ready", False):
            return problem(request, 503, "indexes are still loading", headers=_RETRY)
        try:
            refusal = memos.storage_refusal()
        except Exception as exc:  # any driver error means not ready
            return problem(
                request, 503, f"database unavailable: {type(exc).__name__}", headers=_RETRY
            )
        if refusal is not None:
            return problem(
                request,
                503,
                f"storage refuses writes: {refusal}; reads still work",
                headers={"Retry-After": str(STORAGE_RETRY_AFTER_S)},
            )
        chat: ChatService | None = request.app.state.get("chat")
        body: dict[str, object] = {"status": "ready", "chat": "off" if chat is None else chat.state}
        if chat is not None and (servers := chat.servers()):
            body["servers"] = servers
        if memos.follower is not None:
            body["replica"] = {"applied_seq": memos.follower.applied,
                               "listening": memos.follower.listening}  # fmt: skip
        return Response(body)


_RETRY = {"Retry-After": "5"}


class IndexCollector(Collector):
    """Vectors held in the search indexes, summed over namespaces (tenant names stay out
    of the metrics), read at scrape time from the service's MemOS."""

    def __init__(self) -> None:
        self.memos: MemOS | None = None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        sizes = self.memos.indexes.sizes() if self.memos is not None else {}
        yield GaugeMetricFamily(
            "memos_index_vectors", "Vectors in the search indexes", value=sum(sizes.values())
        )
        yield GaugeMetricFamily(
            "memos_index_namespaces", "Namespaces with a search index loaded", value=len(sizes)
        )
        follower = self.memos.follower if self.memos is not None else None
        if follower is not None:
            yield from _replica_metrics(follower)


def _replica_metrics(
    follower: ChangeFollower,
) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
    """This replica's place in the change feed and how far behind the database it is."""
    try:
        lag = follower.lag_s()
    except Exception:  # the database does not answer: the lag is unknown
        lag = float("nan")
    yield GaugeMetricFamily(
        "memos_replica_lag_seconds",
        "How long the oldest change not yet applied here has waited (0: caught up)",
        value=lag,
    )
    yield GaugeMetricFamily(
        "memos_replica_applied_seq", "Every change up to this number is applied here",
        value=follower.applied,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "memos_replica_listening", "1 while woken by NOTIFY, 0 while only polling",
        value=int(follower.listening),
    )  # fmt: skip
    stats = follower.stats
    yield CounterMetricFamily(
        "memos_replica_changes_applied", "Changes applied", value=stats.applied_changes
    )
    yield CounterMetricFamily(
        "memos_replica_resyncs", "Full reloads after the feed was pruned past this replica",
        value=stats.resyncs,
    )  # fmt: skip
    yield HistogramMetricFamily(
        "memos_replica_apply_delay_seconds", "From a change's commit to its application here",
        buckets=stats.delays.cumulative(), sum_value=stats.delays.total_s,
    )  # fmt: skip


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
        yield from _server_metrics(self.chat.servers())
        times = self.chat.registry.job_times
        yield HistogramMetricFamily(
            "memos_program_job_seconds",
            "Agent programs' job completion time, first turn's start to last turn's end",
            buckets=times.cumulative(),
            sum_value=times.total_s,
        )


def _server_metrics(
    servers: list[dict[str, object]],
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Each model server of a remote backend or fleet: up, its load, its failures."""
    if not servers:
        return
    up = GaugeMetricFamily("memos_llm_server_up", "1 while the server is routed to",
                           labels=["server"])  # fmt: skip
    in_flight = GaugeMetricFamily("memos_llm_server_in_flight", "Requests running there",
                                  labels=["server"])  # fmt: skip
    requests = CounterMetricFamily("memos_llm_server_requests", "Requests sent there",
                                   labels=["server"])  # fmt: skip
    failures = CounterMetricFamily("memos_llm_server_failures", "Times it was taken out",
                                   labels=["server"])  # fmt: skip
    for server in servers:
        url = str(server["url"])
        up.add_metric([url], int(server["state"] == "up"))
        in_flight.add_metric([url], float(server.get("in_flight", 0)))  # type: ignore[arg-type]
        requests.add_metric([url], float(server.get("requests", 0)))  # type: ignore[arg-type]
        failures.add_metric([url], float(server.get("failures", 0)))  # type: ignore[arg-type]
    yield from (up, in_flight, requests, failures)


_pins = PinCollector()
REGISTRY.register(_pins)


def watch_chat(chat: ChatService | None) -> None:
    _pins.chat = chat


class SchedulerCollector(Collector):
    """The MemScheduler's passes, and per rule its runs, memories moved and failures."""

    def __init__(self) -> None:
        self.scheduler: MemScheduler | None = None

    def collect(self) -> Iterator[CounterMetricFamily]:
        if self.scheduler is None:
            return
        yield CounterMetricFamily(
            "memos_scheduler_passes", "MemScheduler passes run", value=self.scheduler.passes
        )
        families = {
            "runs": CounterMetricFamily(
                "memos_scheduler_rule_runs", "Times each rule ran", labels=["rule"]
            ),
            "moved": CounterMetricFamily(
                "memos_scheduler_rule_moved", "Memories each rule moved", labels=["rule"]
            ),
            "failures": CounterMetricFamily(
                "memos_scheduler_rule_failures", "Times each rule failed", labels=["rule"]
            ),
        }
        for name, counters in sorted(self.scheduler.counters.items()):
            for field, family in families.items():
                family.add_metric([name], getattr(counters, field))
        yield from families.values()


_scheduler = SchedulerCollector()
REGISTRY.register(_scheduler)


def watch_scheduler(scheduler: MemScheduler) -> None:
    _scheduler.scheduler = scheduler
