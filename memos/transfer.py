"""JSON-lines export and import of a namespace's served memories, with their versions.

Each record carries the memory's versions (each with its provenance); an import stores
them under the memory and adds one version of its own, derived from the exported one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from memos.memcube.models import Operation, Source, State, is_served, utcnow
from memos.memcube.repository import CubeRepository

from .core import MemOS, Origin
from .errors import InvalidInputError
from .records import NewMemory, PriorVersions

IMPORT_BATCH = 256


def export_jsonl(memos: MemOS, namespace: str, out: IO[str], progress: bool = True) -> int:
    """Write one JSON object per served memory, embedding included; returns how many."""
    written = 0
    with memos.db.reader() as session:
        repo = CubeRepository(session)
        now = utcnow()
        total = repo.count_live(namespace, now)
        with tqdm(total=total, desc=f"export {namespace}", unit="mem", disable=not progress) as bar:
            for rows in repo.export_rows(namespace):
                served = [
                    cube for cube in rows
                    # activation memories are rebuilt from plaintext
                    if is_served(cube.state, cube.expires_at, now) and cube.kind == "plaintext"
                ]  # fmt: skip
                versions = repo.versions_of([cube.id for cube in served])
                for cube in served:
                    record = {**_record(cube), "namespace": namespace,
                              "versions": [_version(v) for v in versions[cube.id]]}  # fmt: skip
                    out.write(json.dumps(record) + "\n")
                    written += 1
                    bar.update(1)
    return written


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _record(cube: Any) -> dict[str, Any]:
    iso = _iso
    return {
        "id": cube.id,
        "text": cube.payload,
        "kind": cube.kind,
        "user_id": cube.user_id,
        "agent_id": cube.agent_id,
        "session_id": cube.session_id,
        "category": cube.category,
        "tags": list(cube.tags),
        "metadata": cube.meta,
        "importance": cube.importance,
        "created_at": iso(cube.created_at),
        "expires_at": iso(cube.expires_at),
        "valid_from": iso(cube.valid_from),
        "valid_to": iso(cube.valid_to),
        "embedding_model": cube.embedding_model,
        "embedding": base64.b64encode(cube.embedding).decode() if cube.embedding else None,
        "version": cube.version,
        "mergeable": cube.mergeable,  # false: a record (added with dedupe off)
    }


VERSION_FIELDS = {
    "text": "payload", "category": "category", "tags": "tags", "metadata": "meta",
    "importance": "importance", "state": "state", "content_hash": "content_hash",
    "embedding_model": "embedding_model", "source": "source", "actor": "actor",
    "operation": "operation", "derived_from": "derived_from",
}  # fmt: skip
VERSION_TIMES = ("valid_from", "valid_to", "expires_at", "recorded_at")
MAX_VERSIONS = 10_000


def _version(version: Any) -> dict[str, Any]:
    record = {"version": version.version}
    record.update({name: getattr(version, column) for name, column in VERSION_FIELDS.items()})
    record.update({name: _iso(getattr(version, name)) for name in VERSION_TIMES})
    return record


def validate_jsonl(memos: MemOS, lines: Iterable[str]) -> int:
    """Check every record of an export before anything is written; returns how many."""
    count = 0
    for count, record in enumerate(_parse(lines), start=1):
        try:
            memos.check_new(_new(record))
            _history(record)
            if not isinstance(record.get("mergeable", True), bool):
                raise InvalidInputError("mergeable must be true or false")
        except InvalidInputError as exc:
            raise InvalidInputError(f"record {count}: {exc.detail}") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"record {count}: {exc}") from exc
    return count


def import_jsonl(
    memos: MemOS, namespace: str, lines: Iterable[str], total: int | None = None,
    progress: bool = True,
) -> tuple[int, int]:  # fmt: skip
    """Add the memories of an export, keeping their ids; ids already present are skipped.

    Run ``validate_jsonl`` over the same lines first: a bad record found here, after
    earlier batches were written, leaves those batches in place.

    Stored embeddings are reused when they come from the same model, else recomputed.
    Returns (imported, skipped).
    """
    imported = skipped = 0
    with tqdm(total=total, desc=f"import {namespace}", unit="mem", disable=not progress) as bar:
        for batch in _batches(_parse(lines), IMPORT_BATCH):
            with memos.db.reader() as session:
                taken = CubeRepository(session).existing_ids(r["id"] for r in batch if r.get("id"))
            fresh = [r for r in batch if r.get("id") not in taken]
            skipped += len(batch) - len(fresh)
            if fresh:
                vectors = _vectors(fresh, memos.embedder.model_id, memos.embedder.dim)
                results = memos.add_batch(
                    [_new(r) for r in fresh],
                    namespace=namespace,
                    origin=Origin(Source.IMPORT.value, "memos import"),
                    ids=[r.get("id") for r in fresh],
                    dedupe=[r.get("mergeable", True) for r in fresh],
                    vectors=vectors,
                    histories=[_history(r) for r in fresh],
                )
                created = sum(r.created for r in results)
                imported += created
                skipped += len(fresh) - created
            bar.update(len(batch))
    return imported, skipped


def _parse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise InvalidInputError(f"line {number}: needs an object with a 'text' string")
        yield record


def _batches(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _new(record: dict[str, Any]) -> NewMemory:
    def when(key: str) -> datetime | None:
        value = record.get(key)
        return datetime.fromisoformat(value) if value else None

    expires_at = when("expires_at")
    ttl = (expires_at - utcnow()).total_seconds() if expires_at else None
    return NewMemory(
        text=record["text"],
        user_id=record.get("user_id"),
        agent_id=record.get("agent_id"),
        session_id=record.get("session_id"),
        category=record.get("category"),
        tags=tags if isinstance(tags := record.get("tags") or (), str) else tuple(tags),
        metadata=record.get("metadata") or {},
        importance=record.get("importance", 0.5),
        ttl_s=max(ttl, 1.0) if ttl is not None else None,
        valid_from=when("valid_from"),
        valid_to=when("valid_to"),
    )


def _vectors(records: list[dict[str, Any]], model_id: str, dim: int) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for record in records:
        blob = record.get("embedding")
        if blob and record.get("embedding_model") == model_id:
            vector = np.frombuffer(base64.b64decode(blob), dtype=np.float32)
            out.append(vector if vector.shape == (dim,) else None)
        else:
            out.append(None)
    return out


def _history(record: dict[str, Any]) -> PriorVersions | None:
    """The exported versions of ``record`` as version rows, checked field by field; None
    for a record without them (an export of an older release, or hand-written)."""
    versions = record.get("versions")
    if versions is None:
        return None
    if not isinstance(versions, list) or not 1 <= len(versions) <= MAX_VERSIONS:
        raise InvalidInputError(f"versions must list 1 to {MAX_VERSIONS} versions")
    rows = tuple(_version_row(v, f"versions[{n}]", n + 1) for n, v in enumerate(versions))
    if rows[-1]["payload"] != record["text"]:
        raise InvalidInputError("the last of versions must have the record's text")
    derived: dict[str, Any] = {}
    for name in ("namespace", "id"):
        if isinstance(record.get(name), str):
            derived[name] = record[name]
    derived.update(version=len(rows), relation="imported_from")
    return PriorVersions(rows, (derived,))


def _version_row(version: Any, where: str, number: int) -> dict[str, Any]:
    if not isinstance(version, dict):
        raise InvalidInputError(f"{where} must be an object")
    if version.get("version") != number:
        raise InvalidInputError(f"{where}.version must be {number} (versions count from 1)")
    kinds: dict[str, tuple[type, ...]] = {
        "text": (str, type(None)), "category": (str, type(None)), "tags": (list,),
        "metadata": (dict,), "importance": (int, float), "content_hash": (str, type(None)),
        "embedding_model": (str, type(None)), "actor": (str, type(None)),
        "derived_from": (list,), "state": (str,), "source": (str,), "operation": (str,),
    }  # fmt: skip
    row: dict[str, Any] = {"version": number}
    for name, allowed in kinds.items():
        value = version.get(name)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise InvalidInputError(f"{where}.{name} is missing or of the wrong type")
        row[VERSION_FIELDS[name]] = value
    for name, values in (("state", State), ("source", Source), ("operation", Operation)):
        if version[name] not in {v.value for v in values}:
            raise InvalidInputError(f"{where}.{name} {version[name]!r} is not one known here")
    if not all(isinstance(t, str) for t in version["tags"]):
        raise InvalidInputError(f"{where}.tags must be strings")
    if not all(isinstance(d, dict) for d in version["derived_from"]):
        raise InvalidInputError(f"{where}.derived_from must list objects")
    if not 0 <= version["importance"] <= 1:
        raise InvalidInputError(f"{where}.importance must be from 0 to 1")
    for name in VERSION_TIMES:
        value = version.get(name)
        if value is None and name != "recorded_at":
            row[name] = None
            continue
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise InvalidInputError(f"{where}.{name} must be an ISO 8601 time with a UTC offset")
        row[name] = moment
    return row
