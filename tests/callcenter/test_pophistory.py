"""The screen-pop's history read ahead (callcenter/pophistory.py): our own logic, with a
read function that counts its calls; the same through the real database and Redis is
in tests/panel/test_pop_prefetch.py."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.pophistory import CallerHistory


class Reads:
    """The database as the cache sees it: tickets per number, each read counted."""

    def __init__(self) -> None:
        self.tickets: dict[str, list[str]] = {}
        self.count = 0
        self.gate: asyncio.Event | None = None  # set: reads wait for it
        self.fail = False

    async def __call__(self, number: str, uniqueid: str):  # type: ignore[no-untyped-def]
        self.count += 1
        seen = list(self.tickets.get(number, []))  # what the query saw
        if self.gate is not None:
            await self.gate.wait()  # its answer comes back later
        if self.fail:
            raise OSError("database away")
        return [{"uniqueid": f"before-{uniqueid}"}], [{"code": c} for c in seen]


def codes(history) -> list[str]:  # type: ignore[no-untyped-def]
    return [t["code"] for t in history[1]]


async def test_the_read_started_in_the_ivr_is_the_one_the_pop_uses():
    reads = Reads()
    reads.tickets["0909"] = ["A1"]
    cache = CallerHistory(reads)
    cache.warm("u1", "0909")
    cache.warm("u1", "0909")  # once per call
    assert codes(await cache.get("u1", "0909")) == ["A1"]
    assert codes(await cache.get("u1", "0909")) == ["A1"]  # a second agent rung
    assert reads.count == 1
    assert (cache.hits, cache.misses) == (2, 0)
    await cache.stop()


async def test_a_call_not_warmed_reads_at_the_pop():
    reads = Reads()
    cache = CallerHistory(reads)
    assert await cache.get("u1", "0909") == ([{"uniqueid": "before-u1"}], [])
    assert (reads.count, cache.misses) == (1, 1)
    await cache.stop()


async def test_a_ticket_written_for_the_phone_makes_the_pop_read_again():
    """The agent of the caller's last call saves its ticket while they are back in
    the IVR: the pop of the new call shows it."""
    reads = Reads()
    cache = CallerHistory(reads)
    cache.warm("u2", "0909")
    await asyncio.sleep(0)
    reads.tickets["0909"] = ["NEW"]
    cache.phone_changed("0909")
    assert codes(await cache.get("u2", "0909")) == ["NEW"]
    assert reads.count == 2
    await cache.stop()


async def test_a_ticket_written_while_the_read_runs_is_not_missed():
    reads = Reads()
    reads.gate = asyncio.Event()
    cache = CallerHistory(reads)
    cache.warm("u2", "0909")
    pop = asyncio.create_task(cache.get("u2", "0909"))
    await asyncio.sleep(0.01)
    reads.tickets["0909"] = ["NEW"]
    cache.phone_changed("0909")  # after the read looked (its result is old)
    reads.gate.set()
    assert codes(await pop) == ["NEW"]
    await cache.stop()


async def test_other_phones_keep_their_read_and_numbers_match_as_tickets_store_them():
    reads = Reads()
    key = {"0909 123 456": "0909123456", "0909123456": "0909123456", "0911": "0911"}
    cache = CallerHistory(reads, phone_key=key.get)
    cache.warm("u1", "0909123456")
    cache.warm("u2", "0911")
    await asyncio.sleep(0)
    cache.phone_changed("0909 123 456")  # typed with spaces on the ticket form
    await cache.get("u1", "0909123456")
    await cache.get("u2", "0911")
    assert (cache.hits, cache.misses) == (1, 1)
    cache.phone_changed("not a phone")  # no key: nothing to do
    cache.phone_changed(None)
    await cache.stop()


async def test_it_keeps_at_most_size_calls():
    reads = Reads()
    cache = CallerHistory(reads, size=3)
    for i in range(5):  # callers who hung up in the IVR are never done with
        cache.warm(f"u{i}", "0909")
    assert len(cache) == 3
    await cache.get("u0", "0909")  # pushed out: read again
    assert cache.misses == 1
    await cache.get("u4", "0909")
    assert cache.hits == 1
    await cache.stop()


async def test_done_forgets_the_call_and_a_failed_read_is_tried_again(caplog):
    reads = Reads()
    reads.fail = True
    cache = CallerHistory(reads)
    cache.warm("u1", "0909")
    await asyncio.sleep(0.01)  # failed with nobody waiting: logged, not left unretrieved
    assert "reading a caller's history for the pop failed" in caplog.text
    reads.fail = False
    cache.warm("u1", "0909")  # the next hint reads again
    assert codes(await cache.get("u1", "0909")) == []
    cache.done("u1")
    assert len(cache) == 0
    reads.fail = True
    with pytest.raises(OSError):
        await cache.get("u1", "0909")
    await cache.stop()


async def test_a_pop_waiting_when_the_call_is_done_with_still_gets_its_history():
    """Two agents rung for one caller: one answers (done) while the other's pop waits."""
    reads = Reads()
    reads.gate = asyncio.Event()
    cache = CallerHistory(reads)
    cache.warm("u1", "0909")
    pop = asyncio.create_task(cache.get("u1", "0909"))
    await asyncio.sleep(0.01)
    cache.done("u1")
    reads.gate.set()
    assert codes(await pop) == []
    assert reads.count == 1
    await cache.stop()
