"""The embedder's two engines agree; the vector index upserts, removes and snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memos.embeddings import Embedder, OnnxEmbedder, TorchEmbedder, agreement, load_embedder
from memos.memcube.ids import new_id
from memos.vector_index import VectorIndex


def test_default_embedder_reproduces_sentence_transformers(embedder: Embedder) -> None:
    assert isinstance(embedder, OnnxEmbedder)
    reference = TorchEmbedder()
    assert agreement(embedder, reference) > 0.9999
    texts = ["short", "a much longer sentence " * 30, "Ünïcödé and emoji 🚀"]
    assert np.allclose(embedder.embed(texts), reference.embed(texts), atol=1e-4)
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_unknown_embedder_engine_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="auto, onnx or torch"):
        load_embedder(tmp_path, "tensorflow")


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_index_upsert_remove_and_grow() -> None:
    rng = np.random.default_rng(0)
    index = VectorIndex(16, "m")
    vectors = _unit(rng, 3000)  # grows past the initial capacity
    ids = [f"id{i}" for i in range(3000)]
    index.upsert(ids, vectors)
    assert len(index) == 3000
    assert index.search(vectors[42], 1)[0].id == "id42"
    index.remove(["id42"])
    assert "id42" not in index and all(n.id != "id42" for n in index.search(vectors[42], 5))
    index.upsert(["id7"], vectors[8:9])  # replaced vector
    assert index.search(vectors[8], 2)[0].score == pytest.approx(1.0, abs=1e-5)
    assert {n.id for n in index.search(vectors[8], 2)} == {"id7", "id8"}
    exact = index.exact_search(vectors[100], ["id100", "id5", "missing"], 5)
    assert [n.id for n in exact] == ["id100", "id5"]


def test_index_snapshot_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index = VectorIndex(16, "m")
    vectors = _unit(rng, 200)
    index.upsert([f"id{i}" for i in range(200)], vectors)
    index.remove(["id3"])
    index.revision = 17
    index.save(tmp_path, "ns")
    loaded = VectorIndex.load(tmp_path, "ns", "m", 16)
    assert loaded is not None and loaded.revision == 17 and len(loaded) == 199
    assert [n.id for n in loaded.search(vectors[9], 3)] == [
        n.id for n in index.search(vectors[9], 3)
    ]
    assert VectorIndex.load(tmp_path, "ns", "other-model", 16) is None
    assert VectorIndex.load(tmp_path, "absent", "m", 16) is None
    (tmp_path / "ns.json").write_text("{broken")
    assert VectorIndex.load(tmp_path, "ns", "m", 16) is None


def test_search_survives_mostly_deleted_index() -> None:
    rng = np.random.default_rng(2)
    index = VectorIndex(16, "m")
    vectors = _unit(rng, 500)
    index.upsert([f"id{i}" for i in range(500)], vectors)
    index.remove([f"id{i}" for i in range(495)])
    found = index.search(vectors[497], 5)
    assert {n.id for n in found} == {f"id{i}" for i in range(495, 500)}
    assert found[0].id == "id497"


def _brute_force(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [ids[i] for i in order]


def test_exact_mode_matches_brute_force_through_changes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 2500)
    ids = [f"id{i}" for i in range(2500)]
    index = VectorIndex(16, "m", exact=True)
    index.upsert(ids, vectors)
    index.remove(ids[:700:2])  # holes filled by moving the last rows
    vectors[1001] = _unit(rng, 1)[0]
    index.upsert([ids[1001]], vectors[1001:1002])
    kept = [i for i in range(2500) if not (i < 700 and i % 2 == 0)]
    kept_ids, kept_vectors = [ids[i] for i in kept], vectors[kept]
    for query in _unit(rng, 20):
        assert [n.id for n in index.search(query, 10)] == _brute_force(
            kept_vectors, kept_ids, query, 10
        )
    index.revision = 3
    index.save(tmp_path, "ns")
    loaded = VectorIndex.load(tmp_path, "ns", "m", 16, exact=True)
    assert loaded is not None and loaded.exact and len(loaded) == len(kept)
    query = _unit(rng, 1)[0]
    assert [n.id for n in loaded.search(query, 10)] == _brute_force(
        kept_vectors, kept_ids, query, 10
    )
    loaded.exact = False  # back to HNSW, same answers at this size
    assert [n.id for n in loaded.search(query, 3)] == _brute_force(kept_vectors, kept_ids, query, 3)


def test_search_mode_setting_is_checked(tmp_path: Path) -> None:
    from memos.config import Settings

    with pytest.raises(ValueError, match="MEMOS_SEARCH_MODE"):
        Settings(data_dir=tmp_path, search_mode="fuzzy")


def test_ids_are_uuid7_and_sort_in_creation_order() -> None:
    import uuid

    ids = [new_id() for _ in range(5_000)]  # many share a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
