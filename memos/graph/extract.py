"""Entities found in a memory's text by rules: URLs, emails, file paths, @handles, issue
keys like ENG-42, and names (runs of capitalised words). Each rule is a named regular
expression; a deployment adds its own or replaces the defaults. Where two rules match
overlapping text, the rule listed first wins (a URL's path is not also a file path)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from memos.errors import InvalidInputError

_POSSESSIVE = r"['\u2019]s"  # Bob's, with a straight or a typographic apostrophe
_CAPITALISED = rf"[A-Z][a-zA-Z0-9]+(?:{_POSSESSIVE})?"
DEFAULT_RULES: dict[str, str] = {
    "url": r"https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]",
    "email": r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    "path": r"(?<![\w/])(?:\.{1,2}/|/|~/)?(?:[\w.-]+/)+[\w-]+(?:\.[\w-]+)+",
    "handle": r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?",
    "issue": r"\b[A-Z][A-Z0-9]{1,9}-\d{1,7}\b",
    "name": rf"\b{_CAPITALISED}(?:\s+{_CAPITALISED})*\b",
}
# Capitalised only because a sentence starts with them: never names on their own.
_SENTENCE_WORDS = """
    a an and as at but by for from he her his i if in is it its let maybe my no not of on or
    our please she so some that the their then there these they this those to today tomorrow
    we what when where which who why will with yes yesterday you your after before also all
    any each every here how new now once only since still until
"""
SENTENCE_WORDS = frozenset(_SENTENCE_WORDS.split())
MAX_RULES = 32


@dataclass(frozen=True)
class Mention:
    text: str
    type: str
    start: int
    end: int


class EntityRules:
    def __init__(self, rules: Mapping[str, str] | None = None) -> None:
        rules = DEFAULT_RULES if rules is None else rules
        if len(rules) > MAX_RULES:
            raise InvalidInputError(f"at most {MAX_RULES} entity rules, got {len(rules)}")
        self._rules: list[tuple[str, re.Pattern[str]]] = []
        for entity_type, pattern in rules.items():
            try:
                self._rules.append((entity_type, re.compile(pattern)))
            except re.error as exc:
                raise InvalidInputError(f"entity rule {entity_type!r}: {exc}") from None

    def find(self, text: str) -> list[Mention]:
        """Each entity the text mentions, once (the first mention), in text order."""
        taken: list[tuple[int, int]] = []
        found: list[Mention] = []
        for entity_type, pattern in self._rules:
            for match in pattern.finditer(text):
                start, end = match.span()
                if any(start < e and s < end for s, e in taken):
                    continue
                mention = _clean(Mention(match.group(), entity_type, start, end))
                if mention is not None:
                    taken.append((start, end))
                    found.append(mention)
        return _first_of_each(sorted(found, key=lambda m: m.start))


def _clean(mention: Mention) -> Mention | None:
    if mention.type != "name":
        return mention
    words = mention.text.split()
    while words and words[0].casefold() in SENTENCE_WORDS:
        words.pop(0)
    if not words:
        return None
    text = " ".join(words)
    text = re.sub(f"{_POSSESSIVE}$", "", text)
    start = mention.start + mention.text.index(words[0])
    return Mention(text, "name", start, start + len(text))


def _first_of_each(mentions: Iterable[Mention]) -> list[Mention]:
    seen: set[str] = set()
    out = []
    for mention in mentions:
        key = mention.text.casefold()
        if key not in seen:
            seen.add(key)
            out.append(mention)
    return out
