"""Full-text search over transcripts, and reading transcripts and their jobs.

SQLite answers from an FTS5 index, PostgreSQL from a GIN ``tsvector`` index
with the 'simple' configuration (no stemming); both index each utterance's
text folded (:func:`core.text.fold`: lower case, without accents), and the
query is folded the same way, so "duong le loi" finds "Đường Lê Lợi" and
"ĐƯỜNG" finds "duong".  A query is a phrase: its words in that order, next
to each other.  Each hit is one utterance with the
words around the match, as plain text (the page escapes it).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import select, text

from core.db import Database
from core.text import WORD, fold, words
from recordings.models import JobStatus, Transcript, TranscriptionJob

CONTEXT_CHARS = 60


class SearchQueryError(ValueError):
    """The query has nothing to search for (empty, or only punctuation)."""


@dataclass(frozen=True)
class SearchHit:
    call_id: int
    speaker: str
    start: float
    before: str
    match: str
    after: str


def query_words(query: str) -> list[str]:
    """The words of a search query; :class:`SearchQueryError` when there are none."""
    if not isinstance(query, str):
        raise SearchQueryError("q: the search text must be a string")
    found = words(query)
    if not found:
        raise SearchQueryError("q: type at least one word to search for")
    if len(found) > 32:
        raise SearchQueryError("q: at most 32 words")
    return found


def _fts5_phrase(found: list[str]) -> str:
    # each word is \w+ (no quotes inside): one quoted FTS5 phrase
    return '"' + " ".join(found) + '"'


def in_context(segment_text: str, found: list[str]) -> tuple[str, str, str]:
    """(before, match, after) for the first place the words occur in ``segment_text``."""
    txt = unicodedata.normalize("NFC", segment_text)
    tokens = list(WORD.finditer(txt))
    folded = [fold(t.group()) for t in tokens]
    n = len(found)
    span: tuple[int, int] | None = None
    for i in range(len(tokens) - n + 1):
        if folded[i : i + n] == found:
            span = tokens[i].start(), tokens[i + n - 1].end()
            break
    if span is None:
        for i, w in enumerate(folded):
            if w == found[0]:
                span = tokens[i].start(), tokens[i].end()
                break
    if span is None:
        return "", "", txt[: 2 * CONTEXT_CHARS]
    s, e = span
    before = txt[max(0, s - CONTEXT_CHARS) : s]
    if s > CONTEXT_CHARS and " " in before:
        before = "… " + before.split(" ", 1)[1]
    after = txt[e : e + CONTEXT_CHARS]
    if len(txt) - e > CONTEXT_CHARS and " " in after:
        after = after.rsplit(" ", 1)[0] + " …"
    return before, txt[s:e], after


class TranscriptSearch:
    """Reads transcripts, their jobs, and searches them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.engine.dialect.name == "postgresql"

    def _match_sql(self, columns: str, tail: str) -> str:
        if self._postgres:
            return (
                f"SELECT {columns} FROM transcript_segments s "
                "WHERE to_tsvector('simple', s.search_text) @@ phraseto_tsquery('simple', :q) "
                f"{tail}"
            )
        return (
            f"SELECT {columns} FROM transcript_segments_fts f "
            "JOIN transcript_segments s ON s.id = f.rowid "
            f"WHERE transcript_segments_fts MATCH :q {tail}"
        )

    def _param(self, found: list[str]) -> str:
        return " ".join(found) if self._postgres else _fts5_phrase(found)

    async def search(self, query: str, *, limit: int = 50, offset: int = 0) -> list[SearchHit]:
        """Utterances that contain the query's words as a phrase, newest call first."""
        found = query_words(query)
        limit = max(1, min(int(limit), 500))
        offset = max(0, int(offset))
        sql = self._match_sql(
            "s.call_id, s.speaker, s.start, s.text",
            "ORDER BY s.call_id DESC, s.start, s.id LIMIT :limit OFFSET :offset",
        )
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    text(sql), {"q": self._param(found), "limit": limit, "offset": offset}
                )
            ).all()
        hits = []
        for call_id, speaker, start, seg_text in rows:
            before, match, after = in_context(seg_text, found)
            hits.append(SearchHit(int(call_id), speaker, float(start), before, match, after))
        return hits

    async def call_ids_matching(self, query: str, limit: int = 5000) -> list[int]:
        """Ids of the calls whose transcript contains the query, newest first."""
        found = query_words(query)
        sql = self._match_sql("DISTINCT s.call_id", "ORDER BY s.call_id DESC LIMIT :limit")
        async with self.db.session() as s:
            rows = (
                await s.execute(text(sql), {"q": self._param(found), "limit": max(1, limit)})
            ).all()
        return [int(r[0]) for r in rows]

    async def for_call(self, call_id: int) -> Transcript | None:
        async with self.db.session() as s:
            return (
                await s.execute(select(Transcript).where(Transcript.call_id == call_id))
            ).scalar_one_or_none()

    async def job(self, call_id: int) -> TranscriptionJob | None:
        async with self.db.session() as s:
            return await s.get(TranscriptionJob, call_id)

    async def failed_jobs(self, limit: int = 100) -> list[TranscriptionJob]:
        """Jobs that ended failed, most recent first (their reason says why)."""
        async with self.db.session() as s:
            return list(
                (
                    await s.execute(
                        select(TranscriptionJob)
                        .where(TranscriptionJob.status == JobStatus.FAILED)
                        .order_by(TranscriptionJob.updated_at.desc())
                        .limit(limit)
                    )
                ).scalars()
            )
