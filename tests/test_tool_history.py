"""Tool durations the TTL policy learned survive a restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from memos.core import MemOS
from memos.errors import StorageRefusedError
from memos.llm.tool_durations import ToolDurationPredictor
from memos.memcube.database import Database
from memos.migrate import upgrade
from memos.tool_history import ToolHistory


@pytest.fixture
def tool() -> str:
    return f"tool-{uuid.uuid4().hex[:10]}"  # the table is shared by the tests of a run


def test_saved_durations_load_into_a_new_predictor(
    memos: MemOS, ns: str, other_ns: str, tool: str
) -> None:
    learned = ToolDurationPredictor()
    for seconds in (1.0, 3.0, 2.0):
        learned.observe(tool, seconds, ns)
    learned.observe(tool, 0.5, other_ns)
    learned.observe(tool, 9.0)  # in process, no namespace: not kept
    assert memos.tool_history.save_from(learned) == 4
    assert memos.tool_history.save_from(learned) == 0  # nothing new since

    restarted = ToolDurationPredictor()
    memos.tool_history.load_into(restarted)
    assert restarted.samples(tool, ns) == [1.0, 2.0, 3.0]
    assert restarted.tools(other_ns)[tool]["calls"] == 1
    assert restarted.samples(tool) == [0.5, 1.0, 2.0, 3.0]  # the prior, without the 9.0


def test_only_each_tools_window_is_kept(memos: MemOS, ns: str, tool: str) -> None:
    history = ToolHistory(memos.db, window=2)
    learned = ToolDurationPredictor()
    for seconds in (1.0, 2.0, 3.0, 4.0, 5.0):
        learned.observe(tool, seconds, ns)
    history.save_from(learned)
    restarted = ToolDurationPredictor()
    history.load_into(restarted)
    assert restarted.tools(ns)[tool]["calls"] == 2 and restarted.samples(tool, ns) == [4.0, 5.0]


def test_calls_a_refused_save_could_not_store_are_kept(tmp_path, tool: str) -> None:
    path = tmp_path / "memos.db"
    upgrade(f"sqlite:///{path}")
    read_only = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    writable = Database(f"sqlite:///{path}")
    learned = ToolDurationPredictor()
    learned.observe(tool, 1.0, "ns")
    try:
        with pytest.raises(StorageRefusedError, match="read-only"):
            ToolHistory(read_only).save_from(learned)
        assert ToolHistory(writable).save_from(learned) == 1  # kept for the next save
    finally:
        read_only.dispose()
        writable.dispose()
