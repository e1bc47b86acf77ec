"""The migrated schema is exactly what the models declare, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from memos.memcube.database import make_engine
from memos.memcube.lexical import is_lexical_object
from memos.migrate import is_current
from memos.schema import metadata


def _model_managed(name: str | None, type_: str, _parents: object) -> bool:
    """The lexical index's tables and index are made by the migration, not by models."""
    return not is_lexical_object(name)


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_name": _model_managed}
            context = MigrationContext.configure(conn, opts=opts)
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
    assert is_current(database_url)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
