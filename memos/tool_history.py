"""The TTL policy's tool durations kept in the database, so a restart keeps what the
service learned: loaded when the service starts, saved as it runs and when it stops."""

from __future__ import annotations

import logging

from memos.llm.tool_durations import WINDOW, ToolDurationPredictor
from memos.memcube.database import Database
from memos.memcube.models import utcnow
from memos.memcube.tool_calls import add_calls, prune_calls, recent_calls

from .errors import StorageRefusedError

log = logging.getLogger(__name__)


class ToolHistory:
    def __init__(self, db: Database, window: int = WINDOW) -> None:
        self._db = db
        self._window = window

    def load_into(self, predictor: ToolDurationPredictor) -> int:
        """Each namespace's recent calls of each tool into ``predictor``; how many."""
        with self._db.reader() as session:
            calls = list(recent_calls(session, self._window))
        predictor.load(calls)
        return len(calls)

    def save_from(self, predictor: ToolDurationPredictor) -> int:
        """The calls ``predictor`` learned since the last save; those beyond each tool's
        window are dropped from the table. Kept for the next save when storage refuses."""
        calls = predictor.take_unsaved()
        if not calls:
            return 0
        try:
            with self._db.unit_of_work() as session:
                add_calls(session, calls, utcnow())
                prune_calls(session, self._window)
        except StorageRefusedError:
            predictor.keep_unsaved(calls)
            raise
        return len(calls)
