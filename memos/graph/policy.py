"""How memories join the graph as they are added: the ``[graph]`` table of the TOML
config (see docs/graph.example.toml)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memos.config import config_table
from memos.errors import InvalidInputError

from .extract import DEFAULT_RULES, EntityRules

MAX_RELATED_K = 32


@dataclass(frozen=True)
class GraphPolicy:
    extract_entities: bool = True  # link each memory to the entities its text mentions
    related_k: int = 3  # link each memory to its k most similar memories ...
    related_min_score: float = 0.75  # ... that are at least this similar (cosine)
    entity_rules: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RULES))
    llm_extract: bool = False  # ask the chat model for the facts each new memory states

    def __post_init__(self) -> None:
        for name in ("extract_entities", "llm_extract"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"graph: {name} must be true or false")
        k = self.related_k
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_RELATED_K:
            raise InvalidInputError(
                f"graph: related_k must be an integer from 0 to {MAX_RELATED_K}"
            )
        score = self.related_min_score
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not (math.isfinite(score) and -1 <= score <= 1)
        ):
            raise InvalidInputError("graph: related_min_score must be a number from -1 to 1")
        self.rules()  # a bad pattern is an error now, not at the first add

    def rules(self) -> EntityRules:
        return EntityRules(self.entity_rules)

    @classmethod
    def from_mapping(cls, table: dict[str, Any]) -> GraphPolicy:
        known = {"extract_entities", "related_k", "related_min_score", "entity_rules",
                 "replace_default_rules", "llm_extract"}  # fmt: skip
        unknown = sorted(set(table) - known)
        if unknown:
            raise InvalidInputError(f"graph: unknown setting {unknown[0]!r}")
        given = table.get("entity_rules", {})
        if not isinstance(given, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in given.items()
        ):
            raise InvalidInputError("graph: entity_rules must map a type to a pattern string")
        replace = table.get("replace_default_rules", False)
        if not isinstance(replace, bool):
            raise InvalidInputError("graph: replace_default_rules must be true or false")
        # A deployment's own rules come first: they win where they overlap the defaults.
        rules = dict(given) if replace else {**given, **{
            k: v for k, v in DEFAULT_RULES.items() if k not in given
        }}  # fmt: skip
        names = ("extract_entities", "related_k", "related_min_score", "llm_extract")
        fields = {k: table[k] for k in names if k in table}
        return cls(entity_rules=rules, **fields)

    @classmethod
    def from_file(cls, path: Path | None) -> GraphPolicy:
        """The ``[graph]`` table of a TOML config file; the defaults when there is none."""
        if path is None:
            return cls()
        return cls.from_mapping(config_table(path, "graph", InvalidInputError))
