"""Lexical search over memory text, in the database's own full-text engine: SQLite's FTS5
table ``memcube_fts`` (kept by triggers) or PostgreSQL's generated ``payload_tsv``
column (``to_tsvector('english', payload)``) and its GIN index. Both made by migration
0005; neither is in the ORM models, so the schema check leaves them out
(``is_lexical_object``)."""

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
PG_COLUMN = "payload_tsv"
SCAN_FACTOR = 4  # index matches ranked per result wanted, before the filters drop some
MIN_SCAN = 200
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
    """Whether a table, index or column belongs to the lexical index (not to the models)."""
    return name is not None and (name.startswith(FTS_TABLE) or name in (PG_INDEX, PG_COLUMN))


def query_terms(query: str) -> list[str]:
    """The query's words and tokens (ENG-42, a@b.io, src/app.py) that carry a topic,
    once each, in order."""
    terms = (t for t in _TERM.findall(query) if t.casefold() not in _STOPWORDS)
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def lexical_search(
    session: Session, namespace: str, query: str, where: ColumnElement[bool], limit: int
) -> list[tuple[str, float]]:
    """The ids of the cubes meeting ``where`` whose text best matches ``query`` (any
    term may match), with their scores (higher is better), best first."""
    terms = query_terms(query)
    if not terms:
        return []
    if session.get_bind().dialect.name == "sqlite":
        return _fts5(session, namespace, terms, where, limit)
    return _tsvector(session, terms, where, limit)


def _fts5(
    session: Session, namespace: str, terms: list[str], where: ColumnElement[bool], limit: int
) -> list[tuple[str, float]]:
    # The index ranks its best matches inside the namespace first (in C, over the doc
    # lists); only those few are joined to the cubes and filtered.
    def phrase(words: str) -> str:
        return '"' + words.replace('"', '""') + '"'

    match = f"namespace : {phrase(namespace)} AND payload : ({' OR '.join(map(phrase, terms))})"
    ranked = (
        select(
            literal_column("rowid").label("rowid"),
            literal_column(f"bm25({FTS_TABLE}, 1.0, 0.0)", Float).label("rank"),
        )
        .select_from(table(FTS_TABLE))
        .where(text(f"{FTS_TABLE} MATCH :match").bindparams(match=match))
        .order_by(literal_column("rank"))
        .limit(max(limit * SCAN_FACTOR, MIN_SCAN))
        .subquery()
    )
    stmt = (
        select(MemCube.id, ranked.c.rank)
        .join(ranked, ranked.c.rowid == literal_column("memcubes.rowid"))
        .where(where)
        .order_by(ranked.c.rank)
        .limit(limit)
    )
    return [(row[0], -float(row[1])) for row in session.execute(stmt)]


def _tsvector(
    session: Session, terms: list[str], where: ColumnElement[bool], limit: int
) -> list[tuple[str, float]]:
    english = literal_column("'english'")
    tsquery = func.plainto_tsquery(english, bindparam("t0", terms[0]))
    for i, term in enumerate(terms[1:], start=1):
        tsquery = tsquery.op("||")(func.plainto_tsquery(english, bindparam(f"t{i}", term)))
    vector = column(PG_COLUMN)
    score = func.ts_rank(vector, tsquery)
    stmt = (
        select(MemCube.id, score)
        .where(vector.op("@@")(tsquery), where)
        .order_by(score.desc())
        .limit(limit)
    )
    return [(row[0], float(row[1])) for row in session.execute(stmt)]
