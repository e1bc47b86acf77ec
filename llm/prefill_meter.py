"""Counts the prompt tokens the engine actually computes, from vLLM's own per-step
scheduler statistics: every prefix-cache lookup's tokens minus its hits, for new and
for preempted (resumed) requests alike; and times them, from finished requests'
prefill intervals, so that what a context costs to prefill again is known in seconds."""

from __future__ import annotations

from typing import Any

from vllm.v1.metrics.loggers import StatLoggerBase

MIN_TIMED_TOKENS = 64  # shorter prefills are mostly the decode steps they share


class PrefillMeter(StatLoggerBase):
    totals: dict[str, int] = {}  # per process: the embedded engine is one per process
    prefill_seconds = 0.0  # over the timed_prefill_tokens

    @classmethod
    def seconds_per_token(cls) -> float | None:
        """Wall time a request spent per prompt token it computed (None before any)."""
        tokens = cls.totals.get("timed_prefill_tokens", 0)
        return cls.prefill_seconds / tokens if tokens else None

    def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
        PrefillMeter.totals = {"computed_prompt_tokens": 0, "cache_hit_tokens": 0,
                               "preempted_requests": 0,
                               "preempted_computed_tokens": 0, "loaded_tokens": 0,
                               "timed_prefill_tokens": 0}  # fmt: skip
        PrefillMeter.prefill_seconds = 0.0

    def record(
        self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None,
        engine_idx: int = 0,
    ) -> None:  # fmt: skip
        if iteration_stats is not None:
            self._time_prefills(iteration_stats.finished_requests)
        if scheduler_stats is None:
            return
        cache = scheduler_stats.prefix_cache_stats
        totals = PrefillMeter.totals
        resumed = cache.preempted_queries - cache.preempted_hits
        totals["computed_prompt_tokens"] += (cache.queries - cache.hits) + resumed
        totals["preempted_computed_tokens"] += resumed
        totals["cache_hit_tokens"] += cache.hits + cache.preempted_hits
        totals["preempted_requests"] += cache.preempted_requests
        # Tokens a KV connector (the host tier) loaded were not computed either.
        loaded = getattr(scheduler_stats, "connector_prefix_cache_stats", None)
        if loaded is not None:
            totals["computed_prompt_tokens"] -= loaded.hits + loaded.preempted_hits
            totals["preempted_computed_tokens"] -= loaded.preempted_hits
            totals["loaded_tokens"] += loaded.hits + loaded.preempted_hits

    @staticmethod
    def _time_prefills(finished: Any) -> None:
        for request in finished:
            computed = request.num_prompt_tokens - request.num_cached_tokens
            if request.num_preemptions == 0 and computed >= MIN_TIMED_TOKENS:
                PrefillMeter.totals["timed_prefill_tokens"] += computed
                PrefillMeter.prefill_seconds += request.prefill_time

    def log_engine_initialized(self) -> None:
        return None
