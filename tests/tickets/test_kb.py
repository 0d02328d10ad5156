"""The procedures knowledge base on real SQLite and PostgreSQL (migrated to head):
versions, search with and without accents and its ranking, the searches kept for the
report, a level-1 ticket answered with an article, and the starter set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from accounts.identity import Actor
from accounts.models import Role, User
from core.clock import FakeClock
from core.db import Database
from tests.helpers import settings_in
from tickets.exceptions import INACTIVE, TAKEN, UNKNOWN, Forbidden, InvalidInput
from tickets.kb import search as kbsearch
from tickets.kb.exceptions import ArticleChanged, ArticleNotFound
from tickets.kb.models import ArticleVersion, Search
from tickets.kb.service import KnowledgeBase, slug
from tickets.kb.starter import ARTICLES
from tickets.models import Agency, Status, Ticket
from tickets.service import TicketService

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


# -- pure functions ------------------------------------------------------------------


def test_the_searched_text_is_folded_words_padded_with_spaces():
    assert kbsearch.document_text("Đăng ký khai sinh", None, "Giấy chứng sinh; tờ khai.") == (
        " dang ky khai sinh giay chung sinh to khai "
    )
    assert kbsearch.document_text() == "  "


def test_query_words_are_folded_unique_and_bounded():
    assert kbsearch.query_words("  KHAI sinh, khai   Sinh!! ") == ["khai", "sinh"]
    assert kbsearch.query_words("Đường") == ["duong"]
    assert kbsearch.query_words("% ' \" -") == []  # no word: nothing to look for
    many = " ".join(f"w{i}" for i in range(20))
    assert len(kbsearch.query_words(many)) == kbsearch.MAX_WORDS
    assert kbsearch.query_words("a" * 100) == ["a" * kbsearch.MAX_WORD]


def test_a_code_is_made_from_the_title():
    assert slug("Đăng ký khai sinh") == "dang-ky-khai-sinh"
    assert slug("!!") == "bai-viet"


# -- on the databases ------------------------------------------------------------------


@pytest.fixture
async def kb(db: Database):
    """The knowledge base with two agencies (one inactive) and one user per role."""
    async with db.session() as s:
        ward = Agency(
            code="ubnd-phuong",
            kind="ward",
            name="UBND Phường Bến Nghé",
            active=True,
            created_at=T0,
            updated_at=T0,
            version=1,
        )
        old = Agency(
            code="cu",
            kind="other",
            name="Đơn vị cũ",
            active=False,
            created_at=T0,
            updated_at=T0,
            version=1,
        )
        s.add_all([ward, old])
        people = {}
        for name, role in (("admin", Role.ADMIN), ("agent", Role.AGENT), ("sup", Role.SUPERVISOR)):
            u = User(
                username=name,
                display_name=name.title(),
                role=role.value,
                password_hash="x",
                extension="1001" if role == Role.AGENT else None,
                created_at=T0,
                password_changed_at=T0,
            )
            s.add(u)
            people[name] = u
        await s.flush()
        ids = {"ward": ward.id, "old": old.id, **{k: u.id for k, u in people.items()}}
    clock = FakeClock(T0)
    service = KnowledgeBase(db, clock)
    service.ids = ids  # type: ignore[attr-defined]
    service.admin = Actor(id=ids["admin"], name="Admin", role=Role.ADMIN)  # type: ignore[attr-defined]
    service.agent = Actor(id=ids["agent"], name="Agent", role=Role.AGENT, extension="1001")  # type: ignore[attr-defined]
    service.sup = Actor(id=ids["sup"], name="Sup", role=Role.SUPERVISOR)  # type: ignore[attr-defined]
    service.fake_clock = clock  # type: ignore[attr-defined]
    return service


def article(title: str, **kw) -> dict:
    return {"title": title, "steps": "1. Nộp hồ sơ.\n2. Nhận kết quả."} | kw


async def test_every_edit_is_a_new_version_and_old_ones_stay(kb):
    a = await kb.create(kb.admin, article("Đăng ký khai sinh", fees="Miễn phí", note="đầu tiên"))
    assert (a.version, a.code, a.example, a.archived) == (1, "dang-ky-khai-sinh", False, False)
    kb.fake_clock.advance(timedelta(hours=1))
    a2 = await kb.update(kb.admin, a.id, 1, {"fees": "10.000 đồng", "note": "phí mới"})
    assert (a2.version, a2.fees, a2.title) == (2, "10.000 đồng", "Đăng ký khai sinh")
    # nothing changed: no version
    same = await kb.update(kb.admin, a.id, 2, {"fees": "10.000 đồng"})
    assert same.version == 2
    versions = await kb.versions(a.id)
    assert [(v.version, v.fees, v.note) for v in versions] == [
        (2, "10.000 đồng", "phí mới"),
        (1, "Miễn phí", "đầu tiên"),
    ]
    old = await kb.version(a.id, 1)
    assert old.fees == "Miễn phí" and old.edited_by_name == "Admin"
    with pytest.raises(ArticleNotFound):
        await kb.version(a.id, 3)
    # an edit of a version read before someone else's is refused, nothing lost
    with pytest.raises(ArticleChanged):
        await kb.update(kb.admin, a.id, 1, {"fees": "20.000 đồng"})
    assert (await kb.get(a.id)).fees == "10.000 đồng"
    # a required field given empty is refused, by name; an optional one is cleared
    with pytest.raises(InvalidInput) as e:
        await kb.update(kb.admin, a.id, 2, {"title": " ", "fees": ""})
    assert e.value.fields() == ["title"]
    a3 = await kb.update(kb.admin, a.id, 2, {"fees": ""})
    assert (a3.fees, a3.title, a3.version) == (None, "Đăng ký khai sinh", 3)


async def test_bad_input_names_the_field(kb):
    with pytest.raises(InvalidInput) as e:
        await kb.create(kb.admin, {"title": " ", "steps": "x" * 20_000, "colour": "red"})
    assert sorted(e.value.fields()) == ["colour", "steps", "title"]
    with pytest.raises(InvalidInput) as e:
        await kb.create(kb.admin, article("A b", agency_id=999_999))
    assert [(f.field, f.message) for f in e.value.errors] == [("agency_id", UNKNOWN)]
    with pytest.raises(InvalidInput) as e:
        await kb.create(kb.admin, article("A b", agency_id=kb.ids["old"]))
    assert [(f.field, f.message) for f in e.value.errors] == [("agency_id", INACTIVE)]
    await kb.create(kb.admin, article("Một", code="mot"))
    with pytest.raises(InvalidInput) as e:
        await kb.create(kb.admin, article("Hai", code="mot"))
    assert [(f.field, f.message) for f in e.value.errors] == [("code", TAKEN)]
    # the same title twice gets two codes
    b1 = await kb.create(kb.admin, article("Chứng thực"))
    b2 = await kb.create(kb.admin, article("Chứng thực"))
    assert (b1.code, b2.code) == ("chung-thuc", "chung-thuc-2")


async def test_only_admins_write(kb):
    for who in (kb.agent, kb.sup):
        with pytest.raises(Forbidden):
            await kb.create(who, article("Tạm trú"))
    a = await kb.create(kb.admin, article("Tạm trú"))
    with pytest.raises(Forbidden):
        await kb.update(kb.agent, a.id, 1, {"title": "x"})


async def test_search_with_and_without_accents_ranks_the_title_first(kb):
    birth = await kb.create(
        kb.admin, article("Đăng ký khai sinh", keywords="giấy khai sinh, làm khai sinh cho con")
    )
    death = await kb.create(kb.admin, article("Đăng ký khai tử", summary="Khác với khai sinh."))
    stay = await kb.create(kb.admin, article("Đăng ký tạm trú", keywords="thuê trọ"))
    await kb.create(kb.admin, article("Cấp sổ đỏ", steps="Nộp đơn tại Văn phòng đăng ký đất đai."))
    for query in ("khai sinh", "KHAI SINH", "Khai Sinh", "khải sính"):
        found = await kb.search(query, record=False)
        assert [h.article.id for h in found.hits] == [birth.id, death.id], query
        assert found.complete
    assert found.hits[0].score > found.hits[1].score
    # the start of a word while the citizen still talks; the keywords are searched
    assert [h.article.id for h in (await kb.search("tam t", record=False)).hits] == [stay.id]
    assert [h.article.id for h in (await kb.search("thue tro", record=False)).hits] == [stay.id]
    # a word's start only: "inh" is inside "sinh", not the start of a word
    assert (await kb.search("inh", record=False)).hits == []
    # "dang ky" is in the titles of three and the steps of the fourth: titles first
    ranked = [h.article.id for h in (await kb.search("đăng ký", record=False)).hits]
    assert ranked[3:] != [] and set(ranked[:3]) == {birth.id, death.id, stay.id}
    # no article has every word: those with some of them, not complete
    some = await kb.search("khai sinh ngoai gio", record=False)
    assert not some.complete and some.hits[0].article.id == birth.id
    # SQL and LIKE characters are only text
    assert (await kb.search("%' OR x=y --", record=False)).hits == []
    # archived: not found by the agents, its versions kept
    await kb.update(kb.admin, death.id, 1, {"archived": True})
    found = await kb.search("khai tu", record=False)
    assert death.id not in [h.article.id for h in found.hits] and not found.complete
    assert len(await kb.versions(death.id)) == 2


async def test_searches_are_kept_once_per_query_typed_on(kb):
    await kb.create(kb.admin, article("Đăng ký khai sinh"))
    for typed in ("kh", "khai", "khai s", "khai sinh"):
        await kb.search(typed, actor=kb.agent)
    kb.fake_clock.advance(timedelta(minutes=2))
    for typed in ("giay phep xay", "giay phep xay dung"):
        await kb.search(typed, actor=kb.agent)
    kb.fake_clock.advance(timedelta(minutes=2))
    await kb.search("Giấy phép xây dựng", actor=kb.agent)
    async with kb.db.session() as s:
        rows = (await s.scalars(select(Search).order_by(Search.id))).all()
    assert [(r.folded, r.results) for r in rows] == [
        ("khai sinh", 1),
        ("giay phep xay dung", 0),
        ("giay phep xay dung", 0),
    ]
    rep = await kb.report(T0, T0 + timedelta(days=1))
    assert (rep.searches, rep.searches_not_found) == (3, 2)
    assert [(n.folded, n.times) for n in rep.not_found] == [("giay phep xay dung", 2)]


async def test_a_level_1_ticket_records_its_article_and_is_counted(kb, tmp_path):
    settings = settings_in(tmp_path)
    tickets = TicketService(kb.db, settings, kb.fake_clock)
    a = await kb.create(kb.admin, article("Đăng ký tạm trú", agency_id=kb.ids["ward"]))
    await kb.update(kb.admin, a.id, 1, {"fees": "Theo quy định"})
    data = {
        "channel": "phone",
        "domain": "state",
        "topic": "flooding",
        "level": 1,
        "description": "Hỏi thủ tục tạm trú",
        "guidance": "Đã hướng dẫn theo bài viết",
    }
    t = await tickets.create(kb.agent, data | {"kb_article_id": a.id})
    assert (t.status, t.kb_article_id, t.kb_article_version) == (Status.CLOSED, a.id, 2)
    assert (await kb.get(a.id)).uses == 1
    with pytest.raises(InvalidInput) as e:
        await tickets.create(kb.agent, data | {"kb_article_id": 999_999})
    assert [(f.field, f.message) for f in e.value.errors] == [("kb_article_id", UNKNOWN)]
    await kb.update(kb.admin, a.id, 2, {"archived": True})
    with pytest.raises(InvalidInput) as e:
        await tickets.create(kb.agent, data | {"kb_article_id": a.id})
    assert [(f.field, f.message) for f in e.value.errors] == [("kb_article_id", INACTIVE)]
    async with kb.db.session() as s:
        assert await s.scalar(select(func.count(Ticket.id))) == 1  # the refused made none
    rep = await kb.report(T0, T0 + timedelta(days=1))
    assert [(r.article_id, r.tickets) for r in rep.used] == [(a.id, 1)]
    assert (await kb.report(T0 + timedelta(days=1), T0 + timedelta(days=2))).used == []


async def test_the_starter_set_is_marked_and_loads_once(kb):
    added = await kb.load_examples(kb.admin, ARTICLES)
    assert len(added) == len(ARTICLES) >= 5
    assert await kb.load_examples(kb.admin, ARTICLES) == []
    found = await kb.search("dang ky khai sinh", record=False)
    top = found.hits[0].article
    assert top.title == "Đăng ký khai sinh" and top.example
    assert top.agency_id == kb.ids["ward"]  # the directory has "ubnd-phuong"
    assert "VÍ DỤ" in (top.summary or "")
    assert (await kb.search("so do", record=False)).hits[0].article.code == (
        "vi-du-cap-giay-chung-nhan-quyen-su-dung-dat"
    )
    async with kb.db.session() as s:
        assert await s.scalar(select(func.count(ArticleVersion.id))) == len(ARTICLES)
