"""Category-aware semantic cache in front of the LLM."""

from .policy import MAX_TTL_S, CachePolicy, CategoryPolicy, LoadBounds, PolicyError
from .semantic_cache import (
    MAX_MEMORY_IDS,
    MAX_NAME_CHARS,
    CachedAnswer,
    Lookup,
    SemanticCache,
    Stored,
)

__all__ = [
    "MAX_MEMORY_IDS",
    "MAX_NAME_CHARS",
    "MAX_TTL_S",
    "CachePolicy",
    "CachedAnswer",
    "CategoryPolicy",
    "LoadBounds",
    "Lookup",
    "PolicyError",
    "SemanticCache",
    "Stored",
]
