"""Lexical search over memory text, in the database's own full-text engine: SQLite's FTS5
table ``memcube_fts`` (kept by triggers) or PostgreSQL's ``to_tsvector('english', ...)``
GIN index. Both made by migration 0005; neither is an ORM table, so the schema check
leaves them out (``is_lexical_object``)."""

from __future__ import annotations

import re

from sqlalchemy import (
    ColumnElement,
    Float,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session

from .models import MemCube

FTS_TABLE = "memcube_fts"
PG_INDEX = "ix_memcubes_fts"
MAX_TERMS = 16
_TERM = re.compile(r"[\w][\w.@/+-]*[\w]|[\w]")
# Words that carry no topic: matching them would rank half the store.
_STOPWORD_TEXT = """
    a about after all also am an and any are as at be been before being but by can could
    did do does doing done for from had has have having he her here hers him his how i if
    in into is it its me my no nor not now of on once only or our out over own same she
    should so some such than that the their them then there these they this those through
    to too under until up very was we were what when where which while who whom why will
    with would you your
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def is_lexical_object(name: str | None) -> bool:
    """Whether a table or index belongs to the lexical index (not to the ORM models)."""
    return name is not None and (name.startswith(FTS_TABLE) or name == PG_INDEX)


def query_terms(query: str) -> list[str]:
    """The query's words and tokens (ENG-42, a@b.io, src/app.py) that carry a topic,
    once each, in order."""
    terms = (t for t in _TERM.findall(query) if t.casefold() not in _STOPWORDS)
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def lexical_search(
    session: Session, query: str, where: ColumnElement[bool], limit: int
) -> list[tuple[str, float]]:
    """The ids of the cubes meeting ``where`` whose text best matches ``query`` (any
    term may match), with their scores (higher is better), best first."""
    terms = query_terms(query)
    if not terms:
        return []
    if session.get_bind().dialect.name == "sqlite":
        # Each term as an FTS5 string: its tokens must appear as a phrase.
        fts = table(FTS_TABLE, column("rowid"))
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        score = literal_column(f"-bm25({FTS_TABLE})", Float)
        stmt = (
            select(MemCube.id, score)
            .select_from(MemCube)
            .join(fts, fts.c.rowid == literal_column("memcubes.rowid"))
            .where(text(f"{FTS_TABLE} MATCH :match").bindparams(match=match))
        )
    else:
        vector = func.to_tsvector(literal_column("'english'"), func.coalesce(MemCube.payload, ""))
        parts = [
            func.plainto_tsquery(literal_column("'english'"), bindparam(f"t{i}", t))
            for i, t in enumerate(terms)
        ]
        tsquery = parts[0]
        for part in parts[1:]:
            tsquery = tsquery.op("||")(part)
        score = func.ts_rank(vector, tsquery)
        stmt = select(MemCube.id, score).where(vector.op("@@")(tsquery))
    stmt = stmt.where(where)
    rows = session.execute(stmt.order_by(score.desc()).limit(limit)).all()
    return [(row[0], float(row[1])) for row in rows]
