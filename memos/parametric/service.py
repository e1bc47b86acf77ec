"""Parametric memory: named LoRA adapters trained on a namespace's memories, stored as
MemCubes of kind ``parametric``.

A cube's payload is its adapter's spec (canonical JSON: the adapter's folder under the
data dir, its checksum, the base model); its metadata holds the name, the training
configuration and metrics; its first version is ``derived_from`` the source memories'
ids and versions as they were when training started. Training runs as a job (the
``jobs`` table): queued, running with progress, then succeeded (the cube made),
failed or cancelled — and a job that does not succeed leaves no cube and no files.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from memos import validation as check
from memos.config import DEFAULT_LORA_MODULES
from memos.errors import (
    ConflictError,
    InvalidInputError,
    MemOSError,
    NotFoundError,
    TooManyError,
    UnavailableError,
)
from memos.fair_queue import FairQueue
from memos.lifecycle import tombstone
from memos.llm.backend import AdapterRef
from memos.memcube.filters import MemoryFilter
from memos.memcube.ids import new_id
from memos.memcube.models import (
    LIVE_STATES,
    CubeVersion,
    Job,
    Kind,
    MemCube,
    Operation,
    State,
    utcnow,
)
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin, content_hash, version_row
from memos.records import NewMemory

from .training import MAX_TEXTS, TrainingCancelled, TrainingConfig, adapter_checksum, train_adapter

if TYPE_CHECKING:
    from memos.core import MemOS

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
JOB_KIND = "parametric"
FINISHED = ("succeeded", "failed", "cancelled")
PENDING = ("queued", "running")
PROGRESS_EVERY_S = 1.0  # how often a running job's progress is written


@dataclass(frozen=True)
class Parametric:
    """A parametric memory: its cube and where its adapter lives."""

    id: str
    namespace: str
    name: str
    version: int
    adapter_dir: Path
    checksum: str
    base_model: str
    training: dict[str, Any]
    metrics: dict[str, Any]
    derived_from: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class JobInfo:
    id: str
    namespace: str
    kind: str
    state: str
    progress: float
    detail: dict[str, Any]
    result_id: str | None
    error: str | None
    created_at: Any
    started_at: Any
    finished_at: Any


def _job_info(row: Job) -> JobInfo:
    return JobInfo(row.id, row.namespace, row.kind, row.state, row.progress, dict(row.detail),
                   row.result_id, row.error, row.created_at, row.started_at,
                   row.finished_at)  # fmt: skip


class ParametricMemory:
    """Trains, stores, finds and deletes a namespace's parametric memories. Jobs run one
    at a time on a worker thread (training takes both cores), namespaces taking turns."""

    def __init__(self, memos: MemOS, unload: Callable[[int], Any] | None = None) -> None:
        self.memos = memos
        self._unload = unload  # drops an adapter the engine loaded (by the engine's id)
        self.root = memos.settings.data_dir / "adapters"
        self._queue = FairQueue("parametric")  # training takes both cores: one job at a time
        self._cancel: dict[str, threading.Event] = {}
        self._lora_ids: dict[str, int] = {}  # cube id -> the engine's id for its adapter
        self._lock = threading.Lock()
        self._holder = memos.leases.holder  # this process, as its jobs' owner
        self._keeper: threading.Thread | None = None  # renews leases, takes lapsed jobs
        self._stopping = threading.Event()

    @property
    def model_dir(self) -> Path:
        return self.memos.settings.chat_model_dir

    # jobs -----------------------------------------------------------------------------

    def start(
        self, namespace: str, name: str, *, memory_ids: list[str] | None = None,
        filters: MemoryFilter | None = None, config: TrainingConfig | None = None,
        origin: Origin,
    ) -> JobInfo:  # fmt: skip
        """Queue the training of adapter ``name`` on the chosen memories' text."""
        check.namespace(namespace)
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidInputError(
                "name must be 1-64 letters, digits, '_', '.' or '-', starting with a letter "
                "or digit"
            )
        if (memory_ids is None) == (filters is None):
            raise InvalidInputError("give either memory_ids or filter")
        if not self._model_ready():
            raise UnavailableError("the chat model is not prepared: run `memos models prepare`")
        config = config or TrainingConfig()
        with self.memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            repo.ensure_namespace(namespace)
            if self._named(session, namespace, name) is not None or self._pending(
                session, namespace, name
            ):
                raise ConflictError(f"a parametric memory named {name!r} exists already")
            sources = self._sources(repo, namespace, memory_ids, filters)
            config = config.for_texts(len(sources))
            self._check_share(session, namespace, config)
            job = Job(
                id=new_id(), namespace=namespace, kind=JOB_KIND, state="queued", progress=0.0,
                request={"name": name, "config": config.to_json(),
                         "sources": [{"id": c.id, "version": c.version} for c in sources],
                         "origin": {"source": origin.source, "actor": origin.actor}},
                detail={"steps_done": 0, "steps": config.steps}, created_at=utcnow(),
                owner=self._holder, lease_until=self._lease_end(),
            )  # fmt: skip
            session.add(job)
            texts = [c.payload for c in sources]
            info = _job_info(job)
        self._enqueue(info.id, namespace, name, texts, config, origin)
        self._keep_leases()
        return info

    def _enqueue(
        self, job_id: str, namespace: str, name: str, texts: list[str], config: TrainingConfig,
        origin: Origin,
    ) -> None:  # fmt: skip
        cancel = threading.Event()
        with self._lock:
            self._cancel[job_id] = cancel
        self._queue.submit(
            namespace, partial(self._run, job_id, namespace, name, texts, config, origin, cancel)
        )

    def _check_share(self, session: Any, namespace: str, config: TrainingConfig) -> None:
        """A job within the cost one job may have, and the namespace within its share of
        the queue (every replica's jobs count: they are rows)."""
        settings = self.memos.settings
        tokens = (config.steps or 0) * config.batch_size * config.max_tokens
        if tokens > settings.max_job_tokens:
            raise InvalidInputError(
                f"steps x batch_size x max_tokens = {tokens:,} tokens, more than one job may "
                f"train on (MEMOS_MAX_JOB_TOKENS = {settings.max_job_tokens:,}); lower "
                "steps, batch_size or max_tokens"
            )
        pending = session.scalar(
            select(func.count()).select_from(Job).where(
                Job.namespace == namespace, Job.state.in_(["queued", "running"])
            )
        )  # fmt: skip
        if pending >= settings.jobs_per_namespace:
            raise TooManyError(
                f"namespace {namespace!r} has {pending} training jobs queued or running, the "
                f"most one namespace may have (MEMOS_JOBS_PER_NAMESPACE = "
                f"{settings.jobs_per_namespace}); retry when one finishes",
                retry_after_s=30,
            )

    def job(self, namespace: str, job_id: str) -> JobInfo:
        check.namespace(namespace)
        with self.memos.db.reader() as session:
            row = session.get(Job, job_id)
            if row is None or row.namespace != namespace:
                raise NotFoundError(f"job {job_id!r} not found")
            return _job_info(row)

    def cancel(self, namespace: str, job_id: str) -> JobInfo:
        """Ask a queued or running job to stop (it stops between two training steps),
        whichever replica runs it: the request is a mark on its row the runner reads."""
        info = self.job(namespace, job_id)
        if info.state in FINISHED:
            raise ConflictError(f"job {job_id!r} has {info.state} already")
        with self.memos.db.unit_of_work() as session:
            row = session.get(Job, job_id, with_for_update=True)
            if row is not None and row.state not in FINISHED:
                row.detail = {**row.detail, "cancel_requested": True}
        with self._lock:
            event = self._cancel.get(job_id)
        if event is not None:
            event.set()
        return info

    def recover(self) -> int:
        """At start: take over the jobs whose holder stopped renewing their lease (a
        process before this one, or a replica that died), and keep this process's own
        leases from now on. A live replica's job is left to it. Returns how many."""
        self._keep_leases()
        return self._take_over()

    def close(self) -> None:
        """Cancel the jobs in flight and wait for them to leave nothing behind."""
        self._stopping.set()
        with self._lock:
            for event in self._cancel.values():
                event.set()
            keeper, self._keeper = self._keeper, None
        self._queue.close()
        if keeper is not None:
            keeper.join()
        self._stopping.clear()

    # leases ---------------------------------------------------------------------------

    def _lease_end(self) -> Any:
        return utcnow() + timedelta(seconds=self.memos.settings.job_lease_s)

    def _keep_leases(self) -> None:
        with self._lock:
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep, name="parametric-leases",
                                                daemon=True)  # fmt: skip
                self._keeper.start()

    def _keep(self) -> None:
        """Every third of a lease: renew this process's jobs' leases, take lapsed ones."""
        while not self._stopping.wait(self.memos.settings.job_lease_s / 3):
            try:
                with self.memos.db.unit_of_work() as session:
                    session.execute(
                        update(Job)
                        .where(Job.owner == self._holder, Job.state.in_(PENDING))
                        .values(lease_until=self._lease_end())
                    )
                self._take_over()
            except Exception:
                log.exception("parametric job leases could not be renewed")

    def _take_over(self) -> int:
        """Claim each job whose lease lapsed (one conditional write: one replica wins)
        and queue it here again from its request; one that cannot run again fails."""
        now = utcnow()
        lapsed = (Job.lease_until.is_(None)) | (Job.lease_until < now)
        with self.memos.db.reader() as session:
            ids = list(session.scalars(select(Job.id).where(Job.state.in_(PENDING), lapsed)))
        taken = 0
        for job_id in ids:
            with self.memos.db.unit_of_work() as session:
                won = session.execute(
                    update(Job).where(Job.id == job_id, Job.state.in_(PENDING), lapsed)
                    .values(owner=self._holder, lease_until=self._lease_end(), state="queued",
                            progress=0.0, started_at=None)
                ).rowcount  # fmt: skip
                if not won:
                    continue
                row = session.get(Job, job_id)
                assert row is not None
                try:
                    texts, config, name, origin = _resumable(session, row)
                except (KeyError, TypeError, ValueError, MemOSError) as exc:
                    row.state, row.finished_at = "failed", utcnow()
                    row.error = f"taken over after its replica stopped, but cannot run: {exc}"
                    taken += 1
                    continue
                namespace = row.namespace
            log.info("parametric job %s taken over (its holder's lease lapsed)", job_id)
            self._enqueue(job_id, namespace, name, texts, config, origin)
            taken += 1
        return taken

    # parametric memories ------------------------------------------------------------

    def list(self, namespace: str) -> list[Parametric]:
        check.namespace(namespace)
        with self.memos.db.reader() as session:
            cubes = CubeRepository(session).of_kind(namespace, Kind.PARAMETRIC.value, LIVE_STATES)
            return [self._of(session, c) for c in cubes]

    def get(self, namespace: str, name: str) -> Parametric:
        check.namespace(namespace)
        with self.memos.db.reader() as session:
            cube = self._named(session, namespace, name)
            if cube is None:
                raise NotFoundError(f"no parametric memory named {name!r}")
            return self._of(session, cube)

    def verified(self, namespace: str, name: str) -> Parametric:
        """The memory, once its adapter's files match the checksum stored with it."""
        found = self.get(namespace, name)
        if not found.adapter_dir.is_dir():
            raise ConflictError(f"the adapter of {name!r} is missing; it cannot be served")
        if adapter_checksum(found.adapter_dir) != found.checksum:
            raise ConflictError(f"the adapter of {name!r} fails its checksum; it is not served")
        return found

    def exists(self, namespace: str, name: str) -> bool:
        check.namespace(namespace)
        with self.memos.db.reader() as session:
            return self._named(session, namespace, name) is not None

    def adapter(
        self, namespace: str, name: str, max_rank: int, modules: tuple[str, ...]
    ) -> AdapterRef:
        """What the engine serves ``name`` with, once its files pass the checksum; the
        engine must serve its rank and the layers it changes (``modules``)."""
        if max_rank == 0:
            raise UnavailableError(
                "the engine serves no adapters: start it with MEMOS_LLM_LORA_RANK (8..64)"
            )
        found = self.verified(namespace, name)
        rank = int(found.training.get("rank", 0))
        if rank > max_rank:
            raise ConflictError(
                f"{name!r} has rank {rank}; the engine serves ranks up to {max_rank} "
                "(MEMOS_LLM_LORA_RANK)"
            )
        changed = set(found.training.get("target_modules", ()))
        if not changed <= set(modules):
            raise ConflictError(
                f"{name!r} changes {', '.join(sorted(changed))}; the engine serves adapters of "
                f"{', '.join(modules)} (MEMOS_LLM_LORA_MODULES)"
            )
        with self._lock:
            lora_id = self._lora_ids.setdefault(found.id, len(self._lora_ids) + 1)
        return AdapterRef(f"{namespace}/{name}", lora_id, str(found.adapter_dir))

    def lora_id(self, cube_id: str) -> int | None:
        """The engine's id for a cube's adapter, if it was served by this process."""
        with self._lock:
            return self._lora_ids.get(cube_id)

    def delete(self, namespace: str, name: str, origin: Origin) -> Parametric:
        """Tombstone the cube, remove its adapter's files and unload it from the engine."""
        check.namespace(namespace)
        with self.memos.db.unit_of_work() as session:
            cube = self._named(session, namespace, name, for_update=True)
            if cube is None:
                raise NotFoundError(f"no parametric memory named {name!r}")
            found = self._of(session, cube)
            tombstone(CubeRepository(session), cube, utcnow(), origin)
        self.let_go(found)
        return found

    def let_go(self, found: Parametric) -> None:
        """Remove a retired or deleted adapter's files and unload it from the engine."""
        shutil.rmtree(found.adapter_dir, ignore_errors=True)
        lora_id = self.lora_id(found.id)
        if lora_id is not None and self._unload is not None:
            self._unload(lora_id)

    def retrain(self, namespace: str, name: str, origin: Origin) -> JobInfo:
        """Train a parametric memory that an erasure retired again, with its training
        configuration, on its sources that are still served (the erased ones are not)."""
        check.namespace(namespace)
        with self.memos.db.reader() as session:
            if self._named(session, namespace, name) is not None:
                raise ConflictError(f"parametric memory {name!r} is served: nothing to retrain")
            retired = [
                c for c in CubeRepository(session).of_kind(
                    namespace, Kind.PARAMETRIC.value, (State.DELETED.value,))
                if c.meta.get("name") == name and "retired" in c.meta
            ]  # fmt: skip
            if not retired:
                raise NotFoundError(f"no parametric memory {name!r} was retired by an erasure")
            last = max(retired, key=lambda c: (c.updated_at, c.id))
            first = CubeRepository(session).version(last.id, 1)
            wanted = [d["id"] for d in (first.derived_from if first is not None else [])]
            plain = MemoryFilter(kind=Kind.PLAINTEXT.value)
            served = CubeRepository(session).live_by_ids(namespace, wanted, plain, utcnow())
            training = dict(last.meta.get("training", {}))
        kept = [i for i in wanted if i in served]
        if not kept:
            raise ConflictError(f"none of the memories {name!r} was trained on is served now")
        return self.start(namespace, name, memory_ids=kept, config=config_of(training),
                          origin=origin)  # fmt: skip

    # the worker -----------------------------------------------------------------------

    def _run(
        self, job_id: str, namespace: str, name: str, texts: list[str],
        config: TrainingConfig, origin: Origin, cancel: threading.Event,
    ) -> None:  # fmt: skip
        cube_id = new_id()
        target = self.root / namespace / cube_id
        try:
            if not self._update(job_id, state="running", started_at=utcnow(), only="queued"):
                return  # cancelled meanwhile, or another replica holds it now
            if cancel.is_set():
                raise TrainingCancelled("cancelled before it started")
            last = [0.0]

            def progress(done: int, total: int, loss: float) -> None:
                if done == total or time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                    last[0] = time.monotonic()
                    self._check_job(job_id, namespace)  # cancelled, taken over, source gone
                    detail = {"steps_done": done, "steps": total, "loss": loss}
                    self._update(job_id, progress=done / total, detail=detail)

            result = train_adapter(self.model_dir, texts, target, config,
                                   progress=progress, cancel=cancel)  # fmt: skip
            self._store(job_id, namespace, cube_id, name, result, origin)
        except TrainingCancelled as exc:
            shutil.rmtree(target, ignore_errors=True)
            self._update(job_id, state="cancelled", error=str(exc), finished_at=utcnow())
        except Exception as exc:
            log.exception("parametric job %s failed", job_id)
            shutil.rmtree(target, ignore_errors=True)
            self._update(job_id, state="failed", error=f"{type(exc).__name__}: {exc}",
                         finished_at=utcnow())  # fmt: skip
        finally:
            with self._lock:
                self._cancel.pop(job_id, None)
            _release_memory()

    def _store(
        self, job_id: str, namespace: str, cube_id: str, name: str, result: Any, origin: Origin
    ) -> None:
        """The cube and the job's success in one unit of work; the sources are checked
        again (a source deleted while training fails the job)."""
        spec = {
            "adapter": result.adapter_dir.relative_to(self.memos.settings.data_dir).as_posix(),
            "checksum": result.checksum,
            "base_model": result.base_model,
        }
        payload = json.dumps(spec, sort_keys=True)
        meta = {"name": name, "training": result.config.to_json(), "metrics": result.metrics()}
        with self.memos.db.unit_of_work() as session:
            job = session.get(Job, job_id, with_for_update=True)
            assert job is not None
            if job.owner != self._holder:
                raise TrainingCancelled("taken over by another replica")
            if self._named(session, namespace, name) is not None:
                raise ConflictError(f"a parametric memory named {name!r} was made meanwhile")
            now = utcnow()
            _refuse_gone_sources(session, namespace, job)
            item = NewMemory(text=payload, metadata=meta)
            row = self.memos.new_cube_row(cube_id, namespace, item,
                                          content_hash(Kind.PARAMETRIC.value, payload), None, now,
                                          Kind.PARAMETRIC)  # fmt: skip
            CubeRepository(session).insert_new(
                [vars(row)],
                [version_row(row, Operation.CREATE, origin, now, job.request["sources"])],
            )
            job.state, job.progress, job.result_id, job.finished_at = "succeeded", 1.0, cube_id, now
            job.detail = {**job.detail, **result.metrics()}

    def _check_job(self, job_id: str, namespace: str) -> None:
        """Between steps: stop when the job was cancelled (on any replica) or taken over,
        and fail when a source is gone."""
        with self.memos.db.reader() as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.owner != self._holder:
                raise TrainingCancelled("taken over by another replica")
            if job.detail.get("cancel_requested"):
                raise TrainingCancelled("cancelled")
            _refuse_gone_sources(session, namespace, job)

    def _update(self, job_id: str, only: str | None = None, **changes: Any) -> bool:
        """Change the job's row if this process still holds it (and, given ``only``, it
        is in that state); whether it did."""
        with self.memos.db.unit_of_work() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None or job.owner != self._holder or (only and job.state != only):
                return False
            for key, value in changes.items():
                setattr(job, key, value)
            return True

    # reads ----------------------------------------------------------------------------

    def _sources(
        self, repo: CubeRepository, namespace: str, memory_ids: list[str] | None,
        filters: MemoryFilter | None,
    ) -> list[MemCube]:  # fmt: skip
        now = utcnow()
        plain = MemoryFilter(kind=Kind.PLAINTEXT.value)
        if memory_ids is not None:
            if not memory_ids or len(memory_ids) > MAX_TEXTS:
                raise InvalidInputError(f"memory_ids must hold 1..{MAX_TEXTS} ids")
            found = repo.live_by_ids(namespace, memory_ids, plain, now)
            missing = [m for m in memory_ids if m not in found]
            if missing:
                raise NotFoundError(f"memory {missing[0]!r} not found (or not plaintext)")
            return [found[m] for m in dict.fromkeys(memory_ids)]
        assert filters is not None
        chosen = repo.page(namespace, _plaintext(filters), now, MAX_TEXTS + 1, None)
        if not chosen:
            raise InvalidInputError("no served memory matches the filter")
        if len(chosen) > MAX_TEXTS:
            raise InvalidInputError(f"the filter matches more than {MAX_TEXTS} memories")
        return sorted(chosen, key=lambda c: c.id)

    def _named(
        self, session: Any, namespace: str, name: str, *, for_update: bool = False
    ) -> MemCube | None:
        return CubeRepository(session).named(namespace, Kind.PARAMETRIC.value, name,
                                             for_update=for_update)  # fmt: skip

    def _pending(self, session: Any, namespace: str, name: str) -> bool:
        rows = session.scalars(
            select(Job).where(
                Job.namespace == namespace,
                Job.kind == JOB_KIND,
                Job.state.in_(["queued", "running"]),
            )
        )
        return any(r.request.get("name") == name for r in rows)

    def _of(self, session: Any, cube: MemCube) -> Parametric:
        return parametric_of(session, cube, self.memos.settings.data_dir)

    def _model_ready(self) -> bool:
        from memos.llm.model import is_prepared

        return is_prepared(self.model_dir)


def _resumable(
    session: Any, job: Job
) -> tuple[list[str], TrainingConfig, str, Origin]:  # fmt: skip
    """What a job taken over runs on: its sources' text at the versions it asked for,
    its configuration, name and origin (from its row)."""
    request = job.request
    _refuse_gone_sources(session, job.namespace, job)
    repo = CubeRepository(session)
    texts = []
    for src in request["sources"]:
        version = repo.version(src["id"], src["version"])
        if version is None or version.payload is None:
            raise ConflictError(f"version {src['version']} of memory {src['id']!r} is gone")
        texts.append(version.payload)
    return (texts, config_of(request["config"]), request["name"],
            Origin(request["origin"]["source"], request["origin"]["actor"]))  # fmt: skip


def config_of(stored: dict[str, Any]) -> TrainingConfig:
    """A training configuration as ``to_json`` stored it."""
    known = {f.name for f in fields(TrainingConfig)}
    values = {k: v for k, v in stored.items() if k in known}
    values["target_modules"] = tuple(values.get("target_modules", DEFAULT_LORA_MODULES))
    return TrainingConfig(**values)


def _refuse_gone_sources(session: Any, namespace: str, job: Job) -> None:
    """A job whose source memory is no longer served fails (it would learn what is gone)."""
    wanted = [src["id"] for src in job.request["sources"]]
    live = CubeRepository(session).live_by_ids(namespace, wanted, MemoryFilter(), utcnow())
    for memory_id in wanted:
        if memory_id not in live:
            raise ConflictError(f"memory {memory_id!r} was deleted while training")


def parametric_of(session: Any, cube: MemCube, data_dir: Path) -> Parametric:
    spec = json.loads(cube.payload)
    first = session.scalars(
        select(CubeVersion).where(CubeVersion.cube_id == cube.id, CubeVersion.version == 1)
    ).first()
    return Parametric(
        id=cube.id, namespace=cube.namespace, name=cube.meta["name"], version=cube.version,
        adapter_dir=data_dir / spec["adapter"],
        checksum=spec["checksum"], base_model=spec["base_model"],
        training=dict(cube.meta.get("training", {})),
        metrics=dict(cube.meta.get("metrics", {})),
        derived_from=tuple(first.derived_from) if first is not None else (),
    )  # fmt: skip


def retire(
    session: Any, cube: MemCube, data_dir: Path, erased: list[str], origin: Origin, now: Any
) -> Parametric:
    """In an erasure's unit of work: the parametric memory ``cube`` was trained on the
    erased memories and is served no more (``ParametricMemory.let_go`` removes its files
    and unloads it once the work commits; ``retrain`` trains it again without them)."""
    found = parametric_of(session, cube, data_dir)
    cube.meta = {**cube.meta, "retired": {"erased_sources": sorted(erased)}}
    tombstone(CubeRepository(session), cube, now, origin)
    return found


def _release_memory() -> None:
    """Give the memory a training run freed back to the system. Training allocates
    gigabytes in a worker thread; glibc keeps freed blocks in that thread's arena, and a
    service that trains again and again (or a test run) would otherwise grow by them."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _plaintext(filters: MemoryFilter) -> MemoryFilter:
    from dataclasses import replace

    return replace(filters, kind=Kind.PLAINTEXT.value)
