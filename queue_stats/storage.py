"""The queue-event table's writes: rows, their keys, batched inserts.

Both ways a queue event comes in, live over AMI (:mod:`queue_stats.ingest`)
and from queue_log at start (:mod:`queue_stats.catchup`), give a :class:`Row`
keyed by :func:`event_key` (the same for an AMI event and its queue_log line)
and go in through :func:`insert_rows`, which drops a row whose key, or for a
member event the key of the second either side, is there already.
:class:`EventWriter` batches the live rows behind the AMI handlers: one task
drains its queue, one transaction per batch, and at stop it lets a write
under way finish, then writes what is still queued.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from core.retry import Outage
from queue_stats.models import QueueEvent

log = logging.getLogger(__name__)

# Events about a member, not a call: their key carries the second they
# happened, and a copy within a second either side is the same event (AMI
# stamps it with its own clock reading, queue_log with another).
MEMBER_ROW_EVENTS = frozenset({"ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE"})


@dataclass(frozen=True)
class Row:
    """One queue_events row before it is written."""

    key: str
    at: datetime
    queue: str
    event: str
    uniqueid: str | None = None
    agent: str | None = None
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    data: dict[str, Any] | None = None

    def values(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "at": self.at,
            "queue": self.queue,
            "uniqueid": self.uniqueid,
            "agent": self.agent,
            "event": self.event,
            "wait_seconds": self.wait_seconds,
            "talk_seconds": self.talk_seconds,
            "data": json.dumps(self.data, ensure_ascii=False, sort_keys=True)
            if self.data
            else None,
        }


def event_key(
    event: str,
    queue: str,
    uniqueid: str | None,
    agent: str | None,
    at: datetime,
    ring_ms: int | None = None,
) -> str:
    """The idempotency key of one queue event, equal for its AMI event and its queue_log line.

    A call's events happen once per call, queue and agent, so their key holds
    no time (the AMI and queue_log clocks are read at different instants); an
    agent may be rung and not answer several times in one call, and each of
    those carries its own ring time in milliseconds, the same number in both.
    Member events have no call: the second they happened tells them apart.
    """
    if uniqueid:
        key = f"{uniqueid}|{queue}|{event}|{agent or ''}"
        if event == "RINGNOANSWER":
            key += f"|{ring_ms if ring_ms is not None else ''}"
        return key[:160]
    return f"-|{queue}|{event}|{agent or ''}|{int(at.timestamp())}"[:160]


def neighbour_keys(row: Row) -> tuple[str, str]:
    """A member event's key one second before and after (see MEMBER_ROW_EVENTS)."""
    base = int(row.at.timestamp())
    prefix = row.key.rsplit("|", 1)[0]
    return f"{prefix}|{base - 1}", f"{prefix}|{base + 1}"


class EventWriter:
    """Inserts rows in batches; each batch one transaction, duplicates dropped.

    A single task drains the queue: whatever arrived while the previous batch
    was written goes in the next (up to ``batch`` rows), so a quiet line
    writes each event at once and a burst writes few large transactions.
    """

    def __init__(self, db: Database, *, batch: int = 2000) -> None:
        self.db = db
        self.batch = batch
        self._queue: asyncio.Queue[Row] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # set while no batch is being written: stop() waits for it instead of
        # cancelling a write half-way (a cancelled SQLite write can leave its
        # connection, and the database's write lock, to the garbage collector)
        self._between = asyncio.Event()
        self._between.set()
        self._stopping = False
        self._outage = Outage("queue events: database", logger=log)
        self.written = 0  # rows inserted (duplicates not counted)
        self.batches = 0

    def put(self, row: Row) -> None:
        self._idle.clear()
        self._queue.put_nowait(row)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue-event-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._between.wait(), 30)
            except TimeoutError:
                log.warning("queue events: a write still under way after 30 s is cancelled")
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while not self._queue.empty():
            rows = self._take()
            for attempt in range(3):
                try:
                    await self._write(rows)
                    break
                except (OperationalError, InterfaceError, OSError) as e:
                    # the database busy or away at stop: a few tries, then
                    # queue_log's catch-up at the next start writes them
                    if attempt == 2:
                        log.warning(
                            "queue events: %d rows not written at stop (%s); "
                            "the next start catches them up from queue_log",
                            len(rows),
                            e,
                        )
                    else:
                        await asyncio.sleep(0.5)
        self._idle.set()

    async def drained(self) -> None:
        """Return once every row put so far is in the database."""
        await self._idle.wait()

    def _take(self, first: Row | None = None) -> list[Row]:
        rows = [first] if first is not None else []
        while len(rows) < self.batch and not self._queue.empty():
            rows.append(self._queue.get_nowait())
        return rows

    async def _run(self) -> None:
        while not self._stopping:
            rows = self._take(await self._queue.get())
            self._between.clear()
            try:
                await self._write_batch(rows)
            finally:
                self._between.set()
            if self._queue.empty():
                self._idle.set()

    async def _write_batch(self, rows: list[Row]) -> None:
        while True:
            try:
                await self._write(rows)
                self._outage.ok()
                break
            except asyncio.CancelledError:
                # stopping: put the batch back so stop() writes it
                for r in rows:
                    self._queue.put_nowait(r)
                raise
            except (OperationalError, InterfaceError, OSError) as e:
                if self._stopping:  # stop() makes the last tries
                    for r in rows:
                        self._queue.put_nowait(r)
                    return
                # the database is away: keep the rows, try again
                await asyncio.sleep(self._outage.failed(f"{len(rows)} rows kept: {e}"))
            except Exception:  # noqa: BLE001 - a row the database refuses
                log.exception("queue events: a batch of %d rows refused", len(rows))
                await self._write_one_by_one(rows)
                break

    async def _write_one_by_one(self, rows: list[Row]) -> None:
        """Write what the database accepts; log (and leave to queue_log's catch-up) the rest."""
        for r in rows:
            try:
                await self._write([r])
            except (OperationalError, InterfaceError, OSError):
                raise
            except Exception as e:  # noqa: BLE001 - logged with the row, never blocks the rest
                log.error("queue events: row %s refused: %s", r, e)

    async def _write(self, rows: list[Row]) -> int:
        if not rows:
            return 0
        async with self.db.session() as s:
            n = await insert_rows(s, rows)
        self.written += n
        self.batches += 1
        return n


async def insert_rows(s: AsyncSession, rows: Iterable[Row]) -> int:
    """Insert ``rows`` unless their key (or, for a member event, its neighbour) is there.

    Returns how many rows were new.
    """
    unique: dict[str, Row] = {}
    for r in rows:
        unique.setdefault(r.key, r)
    members = [r for r in unique.values() if r.event in MEMBER_ROW_EVENTS]
    postgres = s.get_bind().dialect.name == "postgresql"
    if members:
        near = sorted({k for r in members for k in neighbour_keys(r)})
        if postgres:  # one statement text whatever the number of keys
            found = set(await s.scalars(_PG_KEYS_IN, {"keys": near}))
        else:
            found = set(await s.scalars(select(QueueEvent.key).where(QueueEvent.key.in_(near))))
        for r in members:
            # in the table already, or met earlier in this batch
            if any(k in found for k in neighbour_keys(r)):
                unique.pop(r.key, None)
            else:
                found.add(r.key)
    if not unique:
        return 0
    values = [r.values() for r in unique.values()]
    conn = await s.connection()
    if postgres:
        # The whole batch as arrays in one statement of fixed text: psycopg
        # neither rebuilds nor re-parses a query thousands of rows long.
        arrays = {c: [v[c] for v in values] for c in _COLUMNS}
        return len((await conn.execute(_PG_INSERT, arrays)).all())
    # RETURNING counts what was new (executemany's rowcount does not), and
    # SQLAlchemy sends many rows per INSERT statement.
    stmt = (
        sqlite.insert(QueueEvent)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(QueueEvent.id)
    )
    return len((await conn.execute(stmt, values)).all())


_COLUMNS = {
    "key": "varchar",
    "at": "timestamptz",
    "queue": "varchar",
    "uniqueid": "varchar",
    "agent": "varchar",
    "event": "varchar",
    "wait_seconds": "integer",
    "talk_seconds": "integer",
    "data": "text",
}
_PG_INSERT = text(
    f"INSERT INTO queue_events ({', '.join(_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in _COLUMNS.items())}) "
    "ON CONFLICT (key) DO NOTHING RETURNING id"
)
_PG_KEYS_IN = text("SELECT key FROM queue_events WHERE key = ANY(CAST(:keys AS varchar[]))")
