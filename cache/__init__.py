"""Category-aware semantic cache in front of the LLM."""

from .policy import CachePolicy, CategoryPolicy, LoadBounds, PolicyError
from .semantic_cache import CachedAnswer, Lookup, SemanticCache, Stored

__all__ = [
    "CachePolicy",
    "CachedAnswer",
    "CategoryPolicy",
    "LoadBounds",
    "Lookup",
    "PolicyError",
    "SemanticCache",
    "Stored",
]
