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

    # case, normal form and accents of the query do not matter
    assert [x.call_id for x in await search.search(unicodedata.normalize("NFD", "NGẬP NƯỚC"))] == [
        a
    ]
    unaccented = await search.search("ngap nuoc")
    assert [x.call_id for x in unaccented] == [a]
    assert unicodedata.normalize("NFC", unaccented[0].match) == "ngập nước"  # shown as said
    assert [x.call_id for x in await search.search("DUONG LE LOI")] == [a]
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


async def test_accents_and_case_do_not_matter_either_way(db: Database):
    """Typed without accents (an SMS, an agent in a hurry) or with them, stored either way."""
    said = {
        "pbx-3.1": ("citizen", "Tôi là Nguyễn Hữu Cảnh, ở đường Điện Biên Phủ"),
        "pbx-3.2": ("agent", "anh Nguyen Huu Canh o duong Dien Bien Phu a"),
        "pbx-3.3": ("citizen", "안녕하세요 도로가 침수되었어요"),
    }
    calls = []
    for uniqueid, (speaker, utterance) in said.items():
        call_id = await add_call(db, uniqueid)
        await save_transcript(
            db, call_id, [seg(speaker, 0.0, utterance)], model="m", audio_seconds=4.0, now=T0
        )
        calls.append(call_id)
    accented, plain, korean = calls
    s = TranscriptSearch(db)
    both = [plain, accented]  # newest call first
    for query in (
        "nguyen huu canh",
        "NGUYEN HUU CANH",
        "Nguyễn Hữu Cảnh",
        unicodedata.normalize("NFD", "NGUYỄN HỮU CẢNH"),
        "Đường Điện Biên Phủ",
        "duong dien bien phu",
        "ĐƯỜNG",
    ):
        assert await s.call_ids_matching(query) == both, query
    hits = {h.call_id: h for h in await s.search("duong dien")}
    assert unicodedata.normalize("NFC", hits[accented].match) == "đường Điện"
    assert hits[plain].match == "duong Dien"
    # a script whose syllables decompose into letters, not marks, is searched as it was
    assert await s.call_ids_matching("침수되었어요") == [korean]
    assert await s.call_ids_matching("도로가") == [korean]


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
