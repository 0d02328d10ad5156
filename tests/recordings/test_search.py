"""Full-text search over transcripts on real SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import unicodedata

import pytest

from core.db import Database
from recordings.search import SearchQueryError, TranscriptSearch
from recordings.store import delete_transcript, save_transcript
from tests.recordings.conftest import T0, add_call


def seg(speaker: str, start: float, text: str) -> dict:
    ws = text.split()
    return {
        "speaker": speaker,
        "start": start,
        "end": start + len(ws) * 0.4,
        "text": text,
        "words": [
            {"w": w, "start": start + i * 0.4, "end": start + i * 0.4 + 0.3, "conf": 1.0}
            for i, w in enumerate(ws)
        ],
    }


async def test_phrase_search_with_diacritics_in_context(db: Database):
    a = await add_call(db, "pbx-1.1")
    b = await add_call(db, "pbx-1.2")
    # stored decomposed (NFD), as some sources write it; searched precomposed
    flooded = unicodedata.normalize(
        "NFD", "Đường Lê Lợi bị ngập nước từ sáng nay, xe không đi được"
    )
    assert await save_transcript(
        db,
        a,
        [seg("citizen", 0.5, flooded), seg("agent", 6.0, "Dạ, tôi ghi nhận phản ánh của anh")],
        model="m",
        audio_seconds=10.0,
        now=T0,
    )
    assert await save_transcript(
        db, b, [seg("citizen", 1.0, "Nhà tôi mất điện")], model="m", audio_seconds=3.0, now=T0
    )
    # a second save of the same call stores nothing more
    assert not await save_transcript(
        db, a, [seg("citizen", 0.0, "ngập nước")], model="m", audio_seconds=1.0, now=T0
    )
    search = TranscriptSearch(db)

    hits = await search.search("ngập nước")
    assert [(h.call_id, h.speaker) for h in hits] == [(a, "citizen")]
    h = hits[0]
    assert h.start == 0.5
    assert unicodedata.normalize("NFC", h.match) == "ngập nước"
    assert h.before.endswith("bị ")
    assert h.after.startswith(" từ sáng nay")

    # case and normal form of the query do not matter; diacritics do
    assert [x.call_id for x in await search.search(unicodedata.normalize("NFD", "NGẬP NƯỚC"))] == [
        a
    ]
    assert await search.search("ngap nuoc") == []
    assert await search.search("nước ngập") == []  # a phrase: the words in order
    assert await search.call_ids_matching("tôi") == [b, a]
    assert await search.call_ids_matching("mất điện") == [b]

    t = await search.for_call(a)
    assert t is not None and t.text.startswith("citizen: ")
    assert [s["speaker"] for s in t.segments] == ["citizen", "agent"]
    assert await search.for_call(b + 100) is None

    await delete_transcript(db, a)
    assert await search.search("ngập nước") == []
    assert await search.for_call(a) is None


@pytest.mark.parametrize("query", ["", "   ", "?!,.", "\"'*"])
async def test_empty_or_garbage_query_is_a_clear_error(db: Database, query: str):
    with pytest.raises(SearchQueryError, match="q: "):
        await TranscriptSearch(db).search(query)
    with pytest.raises(ValueError):
        await TranscriptSearch(db).call_ids_matching(query)


async def test_fts_operators_in_the_query_are_words(db: Database):
    a = await add_call(db, "pbx-2.1")
    await save_transcript(
        db, a, [seg("agent", 0.0, "near or not and")], model="m", audio_seconds=2.0, now=T0
    )
    s = TranscriptSearch(db)
    assert [h.call_id for h in await s.search('NEAR OR "NOT" AND*')] == [a]
    assert [h.call_id for h in await s.search("or not")] == [a]
