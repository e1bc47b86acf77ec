"""Entity extraction by rules: each kind the defaults know, overlaps resolved by rule
order, sentence words never names, each entity once, and rules a deployment brings."""

from __future__ import annotations

import pytest

from memos.errors import InvalidInputError
from memos.graph.extract import DEFAULT_RULES, EntityRules


def found(text: str, rules: EntityRules | None = None) -> list[tuple[str, str]]:
    return [(m.text, m.type) for m in (rules or EntityRules()).find(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ask @bob.smith about it.", [("@bob.smith", "handle")]),
        ("mail bob@example.com today", [("bob@example.com", "email")]),
        ("ENG-42 and OPS-1234 block X-1", [("ENG-42", "issue"), ("OPS-1234", "issue")]),
        ("edit src/api/routes.py and ~/notes/todo.md", [("src/api/routes.py", "path"),
                                                        ("~/notes/todo.md", "path")]),
        ("see https://git.example.com/larkspur/pull/7.",
         [("https://git.example.com/larkspur/pull/7", "url")]),
        ("Yesterday Alice Chen moved Larkspur.", [("Alice Chen", "name"), ("Larkspur", "name")]),
        ("Bob's team owns it", [("Bob", "name")]),
        ("The fix is in. We shipped it. Today it runs.", []),
    ],
)  # fmt: skip
def test_default_rules(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_overlaps_go_to_the_earlier_rule_and_each_entity_comes_once() -> None:
    text = "https://example.com/docs/setup.md by bob@example.com; Bob and bob again, Bob."
    assert found(text) == [
        ("https://example.com/docs/setup.md", "url"), ("bob@example.com", "email"),
        ("Bob", "name"),
    ]  # fmt: skip


def test_mentions_carry_their_place_in_the_text() -> None:
    text = "ping @dana about ENG-7"
    spans = [(m.start, m.end) for m in EntityRules().find(text)]
    assert [text[s:e] for s, e in spans] == ["@dana", "ENG-7"]


def test_a_deployment_brings_its_own_rules() -> None:
    rules = EntityRules({**DEFAULT_RULES, "service": r"\bsvc-[a-z]+\b"})
    assert ("svc-billing", "service") in found("svc-billing calls ENG-1", rules)
    only_tickets = EntityRules({"ticket": r"\bT\d+\b"})
    assert found("T12 was filed by Bob", only_tickets) == [("T12", "ticket")]


def test_a_bad_rule_names_itself() -> None:
    with pytest.raises(InvalidInputError, match="entity rule 'broken'"):
        EntityRules({"broken": "(unclosed"})
    with pytest.raises(InvalidInputError, match="at most 32 entity rules"):
        EntityRules({f"r{i}": "x" for i in range(33)})
