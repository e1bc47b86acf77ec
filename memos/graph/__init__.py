"""Graph memory: entities, typed links and bi-temporal facts (docs/design.md)."""

from .namespace_graph import Entity, NamespaceGraph
from .service import GraphMemory, MemoryRef
from .timeline import Fact, Span, history, state_at

__all__ = ["Entity", "Fact", "GraphMemory", "MemoryRef", "NamespaceGraph", "Span", "history",
           "state_at"]  # fmt: skip
