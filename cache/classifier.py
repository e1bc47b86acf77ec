"""Which cache category a query belongs to, when the caller does not say: the category
whose exemplar queries' centroid is nearest (cosine) to the query's embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class CentroidClassifier:
    def __init__(self, exemplar_vectors: Mapping[str, np.ndarray], fallback: str) -> None:
        """``exemplar_vectors``: per category, its exemplars' unit vectors (rows);
        categories without exemplars are only reachable by name. ``fallback`` answers
        when no category has exemplars."""
        self.fallback = fallback
        names = [name for name, rows in exemplar_vectors.items() if len(rows)]
        self._names: Sequence[str] = names
        centroids = [np.asarray(exemplar_vectors[n], np.float32).mean(axis=0) for n in names]
        matrix = np.stack(centroids) if centroids else np.zeros((0, 1), np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self._centroids = matrix / np.maximum(norms, 1e-12)

    @property
    def trained(self) -> bool:
        return bool(self._names)

    def classify(self, vector: np.ndarray) -> str:
        if not self._names:
            return self.fallback
        scores = self._centroids @ np.asarray(vector, np.float32).reshape(-1)
        return self._names[int(np.argmax(scores))]
