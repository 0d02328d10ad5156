"""The public side's reads kept short (real Redis, SQLite and PostgreSQL): the portal's pages
rendered once for a few seconds and never across languages or searches, emptied at once
when a published report changes here and within ``public.cache_seconds`` when it changes
elsewhere; the status look-up in one query."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import event, update

from public.cache import Flights, TTLCache
from tickets.models import Ticket

DBS = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def numbers(page: str) -> list[str]:
    return re.findall(r'href="/reports/(\d{10})"', page)


async def get(site, path: str, lang: str | None = None, **params) -> tuple[int, str]:
    headers = {"Cookie": f"public_lang={lang}"} if lang else None
    r = await site.client.get(path, params=params, headers=headers)
    return r.status, await r.text()


class Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_are_bounded_and_a_put_after_a_clear_is_dropped():
    timer = Timer()
    cache: TTLCache[str] = TTLCache(5, size=2, timer=timer)
    cache.put("a", "A")
    timer.now += 4.9
    assert cache.get("a") == "A"
    timer.now += 0.2
    assert cache.get("a") is None and len(cache) == 0
    # the least recently used goes first
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"
    cache.put("c", "C")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
    # a value computed from reads made before a clear() is not kept
    generation = cache.generation
    cache.clear()
    cache.put("d", "D", generation)
    assert cache.get("d") is None
    cache.put("d", "D", cache.generation)
    assert cache.get("d") == "D"
    # 0 seconds: nothing is kept
    off: TTLCache[str] = TTLCache(0, timer=timer)
    off.put("a", "A")
    assert off.get("a") is None


@DBS
async def test_a_page_is_reused_for_its_language_and_address_only_within_the_ttl(site):
    timer = Timer()
    site.ctx.pages.timer = timer
    assert site.ctx.pages.ttl == site.ctx.settings.public.cache_seconds == 5
    t = await site.completed(description="Cống nghẹt ở Hàm Nghi")
    status, first = await get(site, "/reports")
    assert status == 200 and numbers(first) == [t.number]
    # withheld behind this process's back (another process, a database console)
    async with site.panel.ctx.db.session() as s:
        await s.execute(update(Ticket).where(Ticket.id == t.id).values(withheld=True))
    timer.now += 4.9
    status, again = await get(site, "/reports")
    assert status == 200 and again == first  # the same page, within the 5 seconds
    # never another address's or another language's page
    assert numbers((await get(site, "/reports", q="cong nghet"))[1]) == []
    assert numbers((await get(site, "/reports", page="1"))[1]) == []
    status, english = await get(site, "/reports", lang="en")
    assert status == 200 and "Completed reports" in english and numbers(english) == []
    assert "Phản ánh đã xử lý xong" in first and "Phản ánh đã xử lý xong" not in english
    # the one report's page is never kept
    assert (await get(site, f"/reports/{t.number}"))[0] == 404
    # past the 5 seconds the withheld report is gone from the first page too
    timer.now += 0.2
    assert numbers((await get(site, "/reports"))[1]) == []
    # refused input is not kept
    assert (await get(site, "/reports", page="0"))[0] == 400
    assert len(site.ctx.pages) == 4  # /reports, ?q=..., ?page=1 and the English page


@DBS
async def test_a_change_to_a_published_report_here_empties_the_cache_at_once(site):
    told: list[None] = []
    site.panel.ctx.tickets.on_publication_changed.append(lambda: told.append(None))
    t = await site.completed(description="Cây đổ ở Cần Giờ", district="Huyện Cần Giờ")
    assert len(told) == 1  # closed with the citizen's consent: published
    status, page = await get(site, "/reports")
    assert numbers(page) == [t.number]
    assert '<option value="Huyện Cần Giờ" >Huyện Cần Giờ</option>' in page
    admin = site.actor("admin")
    t = await site.panel.ctx.tickets.set_withheld(admin, t.id, t.version, True, "hỏi lại")
    assert len(told) == 2
    page = (await get(site, "/reports"))[1]
    assert numbers(page) == []
    assert "Huyện Cần Giờ" not in page  # the district list is read again too
    t = await site.panel.ctx.tickets.set_withheld(admin, t.id, t.version, False)
    assert len(told) == 3
    assert numbers((await get(site, "/reports"))[1]) == [t.number]
    # the moves of a report that is not published change nothing
    other = await site.report(publish_consent=False)
    other = await site.panel.ctx.tickets.answer(site.actor("officer"), other.id, other.version, "x")
    await site.panel.ctx.tickets.close(site.actor("sup"), other.id, other.version)
    assert len(told) == 3


@DBS
async def test_a_status_look_up_is_one_query(site):
    t = await site.completed()
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        if re.search(r"\b(tickets|ticket_events|agencies)\b", statement):
            statements.append(statement)

    # on SQLite the look-up runs on the reader threads' engine (Database.read)
    db = site.ctx.db
    engine = db.reader if db.reader is not None else db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        data = {"number": t.number, "check": "456"}
        r = await site.client.post("/status", data=data)  # the agencies' names read once
        assert r.status == 200
        statements.clear()
        r = await site.client.post("/status", data=data)
        page = await r.text()
        assert r.status == 200, page
        assert len(statements) == 1, statements
        assert "Sở Giao thông Vận tải đã trả lời" in page
        # a wrong proof reads the same and says the one thing
        statements.clear()
        r = await site.client.post("/status", data={**data, "check": "457"})
        assert r.status == 404 and len(statements) == 1
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def test_a_value_in_the_making_is_shared_and_a_failed_maker_leaves_each_its_own():
    flights: Flights[str] = Flights()
    made: list[str] = []
    gate = asyncio.Event()

    async def make() -> str:
        made.append("x")
        await gate.wait()
        return "page"

    tasks = [asyncio.create_task(flights.share("k", make)) for _ in range(5)]
    await asyncio.sleep(0)
    assert len(flights) == 1
    gate.set()
    got = await asyncio.gather(*tasks)
    assert made == ["x"]
    assert sorted(got) == [("page", False)] * 4 + [("page", True)]
    assert len(flights) == 0
    # a maker that fails: it raises, its waiters get None (and make their own)
    gate.clear()

    async def fail() -> str:
        await gate.wait()
        raise RuntimeError("database away")

    first = asyncio.create_task(flights.share("k", fail))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flights.share("k", make))
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(RuntimeError):
        await first
    assert await waiter == (None, False)
    # cancelled: the same
    gate.clear()
    first = asyncio.create_task(flights.share("k", make))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flights.share("k", make))
    await asyncio.sleep(0)
    first.cancel()
    assert await waiter == (None, False)
    assert len(flights) == 0


@DBS
async def test_requests_for_a_page_being_rendered_wait_for_that_one_render(site):
    """When a popular page leaves the cache, the requests in flight for it share one render
    (not one each: a stop of the loop that was the portal's p99)."""
    await site.completed(description="Đèn đường hỏng ở Lê Lợi")
    searches = 0
    search = site.ctx.portal.search

    async def counted(query):  # type: ignore[no-untyped-def]
        nonlocal searches
        searches += 1
        await asyncio.sleep(0.05)  # a render that takes a while
        return await search(query)

    site.ctx.portal.search = counted
    pages = await asyncio.gather(*(get(site, "/reports") for _ in range(12)))
    assert searches == 1
    assert {status for status, _ in pages} == {200}
    assert len({page for _, page in pages}) == 1 and numbers(pages[0][1])
    # another address is its own render
    assert (await get(site, "/reports", q="den duong"))[0] == 200
    assert searches == 2
