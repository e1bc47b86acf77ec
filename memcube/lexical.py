"""Lexical search over memory text, in the database's own full-text engine: SQLite's FTS5
table ``memcube_fts`` (kept by triggers) or PostgreSQL's generated ``payload_tsv``
column (``to_tsvector('english', payload)``) and its GIN index. Both made by migration
0005; neither is in the ORM models, so the schema check leaves them out
(``is_lexical_object``)."""

from __future__ import annotations

import re
import time

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
from sqlalchemy.sql.elements import TextClause

from .models import MemCube

FTS_TABLE = "memcube_fts"
PG_INDEX = "ix_memcubes_fts"
PG_COLUMN = "payload_tsv"
SCAN_FACTOR = 4  # index matches ranked per result wanted, before the filters drop some
MIN_SCAN = 200
RARE_MATCHES = 2_000  # a term in at most this many cubes is matched exhaustively
COUNT_TTL_S = 60.0
MAX_COUNTS = 10_000
_counts: dict[tuple[str, str], tuple[int, float]] = {}  # (database, term) -> count, when
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
    # Ranking every match of a common word ("status" in a fifth of the store) costs more
    # than the rest of a search, and such words weigh little in bm25 anyway. So when the
    # query has rare terms, only they are matched, and all their matches are joined to
    # the cubes (few, so the namespace and the filters apply exactly). A query of common
    # words only ranks its best matches inside the namespace within the index, then
    # joins those.
    counts = _match_counts(session, terms)
    rare = [t for t in terms if counts[t] <= RARE_MATCHES]
    fts = table(FTS_TABLE, column("rowid"))
    rank = literal_column(f"bm25({FTS_TABLE}, 1.0, 0.0)", Float)
    if rare:
        stmt = (
            select(MemCube.id, rank)
            .select_from(MemCube)
            .join(fts, fts.c.rowid == literal_column("memcubes.rowid"))
            .where(_match(f"payload : ({_any(rare)})"), where)
            .order_by(rank)
            .limit(limit)
        )
        return [(row[0], -float(row[1])) for row in session.execute(stmt)]
    ranked = (
        select(literal_column("rowid").label("rowid"), rank.label("rank"))
        .select_from(table(FTS_TABLE))
        .where(_match(f"namespace : {_phrase(namespace)} AND payload : ({_any(terms)})"))
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


def _phrase(words: str) -> str:
    """An FTS5 string: its tokens must appear together, in order."""
    return '"' + words.replace('"', '""') + '"'


def _any(terms: list[str]) -> str:
    return " OR ".join(map(_phrase, terms))


def _match(query: str) -> TextClause:
    return text(f"{FTS_TABLE} MATCH :match").bindparams(match=query)


def _match_counts(session: Session, terms: list[str]) -> dict[str, int]:
    """How many cubes (of every namespace) hold each term, counted up to RARE_MATCHES + 1
    (past that only "common" matters), in one statement; remembered for a minute."""
    url = str(session.get_bind().url)
    now = time.monotonic()
    counts: dict[str, int] = {}
    for term in terms:
        known = _counts.get((url, term))
        if known is not None and now - known[1] < COUNT_TTL_S:
            counts[term] = known[0]
    missing = [t for t in terms if t not in counts]
    if missing:
        one = (
            "SELECT {i}, count(*) FROM (SELECT rowid FROM " + FTS_TABLE + " WHERE "
            + FTS_TABLE + " MATCH :m{i} LIMIT " + str(RARE_MATCHES + 1) + ")"
        )  # fmt: skip
        sql = " UNION ALL ".join(one.format(i=i) for i in range(len(missing)))
        params = {f"m{i}": f"payload : {_phrase(t)}" for i, t in enumerate(missing)}
        rows = session.execute(text(sql), params).all()
        if len(_counts) + len(missing) > MAX_COUNTS:
            _counts.clear()
        for i, count in rows:
            counts[missing[int(i)]] = int(count)
            _counts[(url, missing[int(i)])] = (int(count), now)
    return counts


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
