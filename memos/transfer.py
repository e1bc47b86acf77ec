"""JSON-lines export and import of a namespace's served memories."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from memos.memcube.models import Source, is_served, utcnow
from memos.memcube.repository import CubeRepository

from .core import MemOS, Origin
from .errors import InvalidInputError
from .records import NewMemory

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
                for cube in rows:
                    if not is_served(cube.state, cube.expires_at, now) or cube.kind != "plaintext":
                        continue  # activation memories are rebuilt from plaintext
                    out.write(json.dumps(_record(cube)) + "\n")
                    written += 1
                    bar.update(1)
    return written


def _record(cube: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

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
    }


def validate_jsonl(memos: MemOS, lines: Iterable[str]) -> int:
    """Check every record of an export before anything is written; returns how many."""
    count = 0
    for count, record in enumerate(_parse(lines), start=1):
        try:
            memos.check_new(_new(record))
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
                    vectors=vectors,
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
