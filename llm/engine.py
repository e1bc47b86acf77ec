"""An embedded vLLM engine behind an asyncio interface.

vLLM's ``LLMEngine`` runs in this process (no engine-core subprocess) and one thread
steps it; coroutines submit requests and read their outputs through queues. Keeping
the engine in process gives the service direct access to the scheduler, so pin
statistics and the KV cache's state need no extra IPC.

Cores: on a small CPU machine the engine's OpenMP threads take all cores while a step
runs and the API's work interleaves between steps; ``threads`` bounds the engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .ttl_policy import CacheState

if TYPE_CHECKING:
    from vllm import RequestOutput, SamplingParams

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.2  # how often an idle engine still releases expired pins


RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 15.0, 60.0)  # waits before successive restart attempts
HEALTHY_AFTER_S = 120.0  # a failure this long after a restart starts the backoff over


class EngineUnavailableError(RuntimeError):
    """vLLM is not installed, the model is not prepared, or the engine stopped."""


class EngineFailedError(EngineUnavailableError):
    """The engine failed while this request was in it; it is restarting."""


@dataclass(frozen=True)
class EngineSettings:
    model_dir: Path
    max_model_len: int = 2048
    kv_cache_gib: int = 1  # VLLM_CPU_KVCACHE_SPACE
    num_blocks: int | None = None  # caps the KV cache at this many blocks
    pinning: bool = True
    pin_cap: float = 0.5
    activation_cap: float = 0.25  # share of the KV cache shared prefixes may hold
    program_fcfs: bool = True  # programs in flight go before new ones
    prefix_caching: bool = True
    # KV blocks' worth of host memory under the pins (agents/host_tier.py); 0: none;
    # "auto": up to a quarter of the memory free at start
    host_tier_blocks: int | Literal["auto"] = 0
    # LoRA adapters (parametric memories) up to this rank; 0: the engine serves none
    lora_max_rank: int = 0
    lora_modules: tuple[str, ...] = ("o_proj",)  # the layers the engine wraps for adapters
    threads: int = 0  # OpenMP threads bound to cores 0..n-1; 0 leaves torch's defaults
    seed: int = 0

    def scheduler_cls(self) -> str | None:
        return "memos.llm.scheduler.PinningScheduler" if self.pinning else None

    def apply_environment(self) -> None:
        """The process-wide settings vLLM reads from the environment."""
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gib))
        os.environ["MEMOS_PIN_CAP"] = str(self.pin_cap)
        os.environ["MEMOS_ACTIVATION_CAP"] = str(self.activation_cap)
        # vLLM's automatic binding would pin this whole process (API included) to one
        # core and reserve the other; in process, leave the cores to the OS unless told.
        bind = f"0-{self.threads - 1}" if self.threads else "nobind"
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = bind

    def engine_args(self) -> dict[str, Any]:
        """Keyword arguments for vLLM's ``EngineArgs`` (or ``AsyncEngineArgs``)."""
        return {
            "model": str(self.model_dir),
            "dtype": "float32",
            "enforce_eager": True,
            "max_model_len": self.max_model_len,
            "num_gpu_blocks_override": self.num_blocks,
            "enable_prefix_caching": self.prefix_caching,
            "scheduling_policy": "priority" if self.program_fcfs else "fcfs",
            "scheduler_cls": self.scheduler_cls(),
            "async_scheduling": False,
            "seed": self.seed,
            "disable_log_stats": False,
            "kv_transfer_config": self.host_tier_config(),
            **self.lora_args(),
        }

    def lora_args(self) -> dict[str, Any]:
        if self.lora_max_rank == 0:
            return {}
        return {"enable_lora": True, "max_lora_rank": self.lora_max_rank, "max_loras": 2,
                "max_cpu_loras": 4,
                "lora_target_modules": list(self.lora_modules)}  # fmt: skip

    def host_tier_config(self) -> dict[str, Any] | None:
        if self.host_tier_blocks == 0:
            return None
        return {
            "kv_connector": "HostTierConnector",
            "kv_connector_module_path": "memos.llm.host_tier",
            "kv_role": "kv_both",
            "kv_connector_extra_config": {"capacity_blocks": self.host_tier_blocks},
        }


@dataclass
class _Call:
    fn: Callable[[], Any]
    future: concurrent.futures.Future[Any]


@dataclass
class _Submission:
    request_id: str
    prompt: Any
    params: SamplingParams
    priority: int
    sink: asyncio.Queue[RequestOutput | BaseException]
    loop: asyncio.AbstractEventLoop
    lora: Any = None  # a vllm LoRARequest


class Engine:
    """Load once per process with ``start()``; then ``stream()`` requests from any loop."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._engine: Any = None
        self._submissions: queue.Queue[_Submission | _Call | str] = queue.Queue()
        self._sinks: dict[str, _Submission] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._serving = threading.Event()  # set while steps run; clear while (re)starting
        self._ids = itertools.count()
        self.started_s: float | None = None
        self.restarts = 0  # times the engine was rebuilt after a failure
        self.start_error: str | None = None  # why the first start failed
        self._last_restart = 0.0
        self._failures_in_row = 0

    # life cycle -------------------------------------------------------------------

    def start(self) -> Engine:
        if self._thread is not None:
            return self
        began = time.monotonic()
        try:
            self._engine = self._build()
        except Exception as exc:
            self.start_error = f"{type(exc).__name__}: {exc}"
            raise
        self.started_s = time.monotonic() - began
        log.info("vLLM engine ready in %.0f s", self.started_s)
        self._serving.set()
        self._thread = threading.Thread(target=self._run, name="vllm-engine", daemon=True)
        self._thread.start()
        return self

    def _build(self) -> Any:
        s = self.settings
        if not (s.model_dir / "config.json").is_file():
            raise EngineUnavailableError(
                f"no model at {s.model_dir}: run `memos models prepare` first"
            )
        s.apply_environment()
        try:
            from vllm import EngineArgs, LLMEngine
        except ImportError as exc:
            raise EngineUnavailableError(
                "vLLM is not installed: pip install 'memos-os[llm]'"
            ) from exc
        log.info("starting the vLLM engine on %s (tens of seconds on a CPU)", s.model_dir)
        args = EngineArgs(**s.engine_args())
        from .prefill_meter import PrefillMeter

        return LLMEngine.from_engine_args(args, stat_loggers=[PrefillMeter])

    def close(self) -> None:
        self._stopping.set()
        self._serving.clear()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._engine is not None:
            scheduler = self.scheduler
            if hasattr(scheduler, "pins"):
                scheduler.pins.release_all()
            self._dispose()

    @property
    def running(self) -> bool:
        """Serving requests: started, and not restarting after a failure."""
        return self._serving.is_set() and self._thread is not None and self._thread.is_alive()

    @property
    def state(self) -> str:
        """``loading`` before the first start, ``ready``, ``restarting`` after a failure,
        ``failed`` when it never started, or ``stopped``."""
        if self.running:
            return "ready"
        if self._thread is None:
            if self._stopping.is_set():
                return "stopped"
            return "failed" if self.start_error else "loading"
        return "restarting" if self._thread.is_alive() else "stopped"

    @property
    def retry_after_s(self) -> int:
        """How long a caller should wait for the engine: about one start."""
        return max(1, round(self.started_s or 30.0))

    # requests ----------------------------------------------------------------------

    def new_request_id(self, prefix: str = "req") -> str:
        return f"{prefix}-{next(self._ids)}"

    async def stream(
        self, prompt: Any, params: SamplingParams, *, request_id: str | None = None,
        priority: int = 0, lora: Any = None,
    ) -> AsyncIterator[RequestOutput]:  # fmt: skip
        """Outputs of one request as the engine produces them, the finished one last
        (``lora``: a ``LoRARequest``, on an engine started with ``lora_max_rank``)."""
        if not self.running:
            raise EngineUnavailableError(f"the engine is {self.state}")
        request_id = request_id or self.new_request_id()
        sink: asyncio.Queue[RequestOutput | BaseException] = asyncio.Queue()
        self._submissions.put(
            _Submission(
                request_id, prompt, params, priority, sink, asyncio.get_running_loop(), lora
            )
        )
        finished = False
        try:
            while not finished:
                item = await sink.get()
                if isinstance(item, BaseException):
                    raise item
                finished = item.finished
                yield item
        finally:
            if not finished:
                self._submissions.put(request_id)  # abort: the caller went away

    async def generate(
        self, prompt: Any, params: SamplingParams, *, request_id: str | None = None,
        priority: int = 0,
    ) -> RequestOutput:  # fmt: skip
        outputs = [o async for o in self.stream(prompt, params, request_id=request_id,
                                                  priority=priority)]  # fmt: skip
        return outputs[-1]

    def call(self, fn: Callable[[], Any], timeout: float = 60) -> Any:
        """Run ``fn`` on the engine thread between two steps, where the scheduler's state
        may be read and changed safely, and return its result."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._submissions.put(_Call(fn, future))
        return future.result(timeout=timeout)

    # the engine thread ---------------------------------------------------------------

    def _run(self) -> None:
        """Step the engine; when a step fails, fail the requests in it (and those
        waiting to enter) with ``EngineFailedError``, rebuild the engine and go on."""
        while not self._stopping.is_set():
            try:
                self._serve(self._engine)
            except Exception as exc:  # the engine's state is unknown now: start afresh
                log.exception("the vLLM engine failed; restarting it")
                self._serving.clear()
                self._fail_waiters(exc)
                self._restart()
            except BaseException as exc:  # the process is going down: answer every waiter
                self._serving.clear()
                self._fail_waiters(exc)
                raise

    def _serve(self, engine: Any) -> None:
        while not self._stopping.is_set():
            self._take_submissions(engine, block=not engine.has_unfinished_requests())
            if engine.has_unfinished_requests():
                for output in engine.step():
                    self._deliver(output)
            else:
                self._expire_idle_holds()

    def _fail_waiters(self, cause: BaseException) -> None:
        failure = EngineFailedError(
            f"the language model failed while serving this request ({type(cause).__name__}) "
            f"and is restarting; retry in about {self.retry_after_s} s"
        )
        for submission in self._sinks.values():
            submission.loop.call_soon_threadsafe(submission.sink.put_nowait, failure)
        self._sinks.clear()
        while True:
            try:
                item = self._submissions.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Submission):
                item.loop.call_soon_threadsafe(item.sink.put_nowait, failure)
            elif isinstance(item, _Call):
                item.future.set_exception(failure)

    def _restart(self) -> None:
        """Rebuild the engine, waiting longer after each failure that follows soon after
        the last restart."""
        if time.monotonic() - self._last_restart > HEALTHY_AFTER_S:
            self._failures_in_row = 0
        while not self._stopping.is_set():
            wait = RESTART_BACKOFF_S[min(self._failures_in_row, len(RESTART_BACKOFF_S) - 1)]
            self._failures_in_row += 1
            if self._stopping.wait(wait):
                return
            self._dispose()
            try:
                self._engine = self._build()
            except Exception:
                log.exception("the vLLM engine did not restart; trying again")
                continue
            self.restarts += 1
            self._last_restart = time.monotonic()
            log.info("vLLM engine restarted (%d restarts so far)", self.restarts)
            self._serving.set()
            return

    def _dispose(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        try:
            engine.engine_core.shutdown()
        except Exception:
            log.warning("the failed engine did not shut down cleanly", exc_info=True)
        del engine
        gc.collect()

    def _take_submissions(self, engine: Any, block: bool) -> None:
        try:
            item = self._submissions.get(timeout=IDLE_WAIT_S) if block else None
        except queue.Empty:
            return
        while True:
            if item is not None:
                self._apply(engine, item)
            try:
                item = self._submissions.get_nowait()
            except queue.Empty:
                return

    def _apply(self, engine: Any, item: _Submission | _Call | str) -> None:
        if isinstance(item, _Call):
            try:
                item.future.set_result(item.fn())
            except Exception as exc:
                item.future.set_exception(exc)
            return
        if isinstance(item, str):
            if self._sinks.pop(item, None) is not None:
                engine.abort_request([item])
            return
        try:
            engine.add_request(item.request_id, item.prompt, item.params,
                               priority=item.priority, lora_request=item.lora)  # fmt: skip
        except Exception as exc:  # a bad request fails alone
            item.loop.call_soon_threadsafe(item.sink.put_nowait, exc)
            return
        self._sinks[item.request_id] = item

    def _deliver(self, output: RequestOutput) -> None:
        submission = self._sinks.get(output.request_id)
        if submission is None:
            return
        if output.finished:
            del self._sinks[output.request_id]
        submission.loop.call_soon_threadsafe(submission.sink.put_nowait, output)

    def _expire_idle_holds(self) -> None:
        """What steps would end on time, ended by an idle engine too: pins past their
        TTL, and host-tier contexts no turn has used for the tier's idle time."""
        for table in ("pins", "shared"):
            pins = getattr(self.scheduler, table, None)
            if pins is not None:
                pins.expire()
        host_tier = self._host_tier()
        if host_tier is not None:
            host_tier.forget_idle()
            forget = host_tier.take_forgets()
            if forget:  # no step will carry them to the worker: free its copies now
                self.host_tier_worker().drop_copies(forget)

    # state ----------------------------------------------------------------------------

    @property
    def scheduler(self) -> Any:
        return self._engine.engine_core.engine_core.scheduler

    @property
    def tokenizer(self) -> Any:
        return self._engine.get_tokenizer()

    def kv_usage(self) -> float:
        """The share of KV blocks held by running requests and pins."""
        pool = self.scheduler.kv_cache_manager.block_pool
        return 1.0 - pool.get_num_free_blocks() / max(1, pool.num_gpu_blocks)

    def cache_state(self) -> CacheState:
        """What the TTL policy weighs a pin against: the cache's use and what a context
        that is not pinned costs to bring back (a prefill, or the host tier's copy)."""
        return CacheState(usage=min(1.0, max(0.0, self.kv_usage())), miss_cost=self._miss_cost())

    def unload_adapter(self, adapter_id: int) -> bool:
        """Drop a LoRA adapter the engine loaded (a deleted parametric memory's)."""
        if not self.running or self.settings.lora_max_rank == 0:
            return False
        return bool(self.call(lambda: self._engine.remove_lora(adapter_id)))

    def prefix_held(self, prefix_id: str) -> dict[str, int]:
        """What keeps a shared prefix now: its blocks pinned in the KV cache and its
        blocks copied to the host tier."""
        def read() -> dict[str, int]:
            pinned = getattr(self.scheduler, "shared_blocks", None)
            host_tier = self._host_tier()
            return {
                "pinned_blocks": pinned(prefix_id) if pinned is not None else 0,
                "host_blocks": host_tier.context_blocks(prefix_id) if host_tier else 0,
            }

        return self.call(read) if self.running else {"pinned_blocks": 0, "host_blocks": 0}

    def _host_tier(self) -> Any:
        connector = getattr(self.scheduler, "connector", None)
        return connector if hasattr(connector, "miss_cost") else None

    def host_tier_worker(self) -> Any:
        """The worker's half of the host tier, which holds the copies: in this process,
        since the engine runs in it (vLLM keeps it as the process's KV transfer group)."""
        from vllm.distributed.kv_transfer import get_kv_transfer_group

        return get_kv_transfer_group()

    def _miss_cost(self) -> float:
        """A context not pinned costs a prefill, unless the host tier copies it back."""
        from .prefill_meter import PrefillMeter

        host_tier = self._host_tier()
        return host_tier.miss_cost(PrefillMeter.seconds_per_token()) if host_tier else 1.0

    def kv_stats(self) -> dict[str, float]:
        """The KV cache's, the pins' and the host tier's figures, and how often the
        engine was restarted (only that while it restarts)."""
        stats: dict[str, float] = {"engine_restarts": self.restarts}
        if not self.running:
            return stats
        pool = self.scheduler.kv_cache_manager.block_pool
        stats.update(
            total_blocks=pool.num_gpu_blocks,
            free_blocks=pool.get_num_free_blocks(),
            block_size=self.scheduler.block_size,
        )
        from .prefill_meter import PrefillMeter

        stats.update({f"prefill_{k}": v for k, v in PrefillMeter.totals.items()})
        pin_stats = getattr(self.scheduler, "pin_stats", None)
        if pin_stats is not None:
            stats.update({f"pin_{k}": v for k, v in pin_stats().items()})
        host_tier = self._host_tier()
        if host_tier is not None:
            stats.update({f"host_{k}": v for k, v in host_tier.tier_stats().items()})
            stats["host_miss_cost"] = self._miss_cost()
        return stats
