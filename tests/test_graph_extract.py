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


def test_the_graph_policy_comes_from_the_config_file(tmp_path) -> None:
    from pathlib import Path

    from memos.graph.policy import GraphPolicy

    example = GraphPolicy.from_file(Path(__file__).parent.parent / "docs/graph.example.toml")
    assert next(iter(example.entity_rules)) == "ticket" and "issue" in example.entity_rules
    found = example.rules().find("See TICKET#12 and ENG-42 by @bob")
    assert [(m.text, m.type) for m in found] == [
        ("TICKET#12", "ticket"),
        ("ENG-42", "issue"),
        ("@bob", "handle"),
    ]
    only = tmp_path / "only.toml"
    only.write_text("[graph]\nreplace_default_rules = true\n[graph.entity_rules]\nk = 'K\\d'\n")
    assert GraphPolicy.from_file(only).entity_rules == {"k": "K\\d"}
    for body, field in (("related_k = -1", "related_k"), ("related_min_score = 2", "related_min_score"),
                        ("llm_extract = 1", "llm_extract"), ("colour = 1", "colour"),
                        ("[graph.entity_rules]\nx = '('", "entity rule 'x'")):  # fmt: skip
        bad = tmp_path / "bad.toml"
        bad.write_text(f"[graph]\n{body}\n")
        with pytest.raises(InvalidInputError, match=field):
            GraphPolicy.from_file(bad)
    with pytest.raises(InvalidInputError, match="not found"):
        GraphPolicy.from_file(tmp_path / "missing.toml")
