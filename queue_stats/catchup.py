"""Catching the event table up from Asterisk's queue_log.

app_queue writes queue_log whether or not the application listens, so what
happened while the application was down (or what AMI does not tell, such as
a ring cancelled by the caller) is read from there: after every AMI login and
then every minute, the lines appended since the last pass become rows with
the same keys the live AMI path gives them (:func:`queue_stats.storage.event_key`),
and the database drops those it has already.  The reader's offset (its own
state file, apart from the call records' reader) moves on only once the rows
are committed, so a crash mid-pass re-reads, never skips.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from callcenter.queue_log import Entry, QueueLogReader
from callcenter.shifts import extension_of
from core.ami import header_int  # queue_log fields are written as AMI headers are
from core.db import Database
from queue_stats.storage import Row, event_key, insert_rows

log = logging.getLogger(__name__)

# queue_log's verbs that become rows, and the name the row gets.
VERBS = {
    "ENTERQUEUE": "JOIN",
    "ABANDON": "ABANDON",
    "EXITWITHTIMEOUT": "EXITWITHTIMEOUT",
    "EXITEMPTY": "EXITEMPTY",
    "EXITWITHKEY": "EXITWITHKEY",
    "CONNECT": "CONNECT",
    "COMPLETEAGENT": "COMPLETEAGENT",
    "COMPLETECALLER": "COMPLETECALLER",
    "BLINDTRANSFER": "TRANSFER",
    "ATTENDEDTRANSFER": "TRANSFER",
    "RINGNOANSWER": "RINGNOANSWER",
    "RINGCANCELED": "RINGCANCELED",
    "AGENTDUMP": "AGENTDUMP",
    "ADDMEMBER": "ADDMEMBER",
    "REMOVEMEMBER": "REMOVEMEMBER",
    "PAUSE": "PAUSE",
    "UNPAUSE": "UNPAUSE",
}

# callids that are no call
_NO_CALL = {"", "NONE", "MANAGER", "REALTIME"}

CHUNK = 2000


def row_from_entry(e: Entry) -> Row | None:
    """The row a queue_log line stands for, or None for lines that are no queue event."""
    verb = VERBS.get(e.event)
    if verb is None or not e.queue or e.queue == "NONE":
        return None
    uniqueid = None if e.callid in _NO_CALL or verb in ("PAUSE", "UNPAUSE") else e.callid
    if verb in ("ADDMEMBER", "REMOVEMEMBER"):
        uniqueid = None
    agent = None if e.agent in ("", "NONE") else extension_of(e.agent)
    wait = talk = ring_ms = None
    data: dict[str, Any] | None = None
    f = e.field
    if verb == "JOIN":
        data = {"position": header_int(f(2)), "caller": f(1) or None}
    elif verb in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY"):
        wait = header_int(f(2))
        data = {"position": header_int(f(0)), "original_position": header_int(f(1))}
    elif verb == "EXITWITHKEY":
        wait = header_int(f(3))
        data = {"key": f(0), "position": header_int(f(1)), "original_position": header_int(f(2))}
    elif verb == "CONNECT":
        wait = header_int(f(0))
        data = {"ring_seconds": header_int(f(2))}
    elif verb in ("COMPLETEAGENT", "COMPLETECALLER"):
        wait, talk = header_int(f(0)), header_int(f(1))
    elif verb == "TRANSFER" and len(e.data) >= 3:
        wait, talk = header_int(e.data[-3]), header_int(e.data[-2])
    elif verb in ("RINGNOANSWER", "RINGCANCELED"):
        ring_ms = header_int(f(0))
        data = {"ring_ms": ring_ms}
    elif verb == "PAUSE" and f(0):
        data = {"reason": f(0)}
    if verb in ("JOIN", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"):
        agent = None
    if (uniqueid is None) != (verb in ("ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE")):
        return None  # a call event without a call, or the reverse: not ours
    return Row(
        key=event_key(verb, e.queue, uniqueid, agent, e.at, ring_ms),
        at=e.at,
        queue=e.queue,
        event=verb,
        uniqueid=uniqueid,
        agent=agent,
        wait_seconds=wait,
        talk_seconds=talk,
        data=data,
    )


class QueueLogCatchUp:
    """Reads queue_log from where it stopped and inserts what the table lacks."""

    def __init__(self, reader: QueueLogReader, db: Database, *, interval: float = 60) -> None:
        self.reader = reader
        self.db = db
        self.interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.added = 0  # rows the passes found missing
        self._stopped = False

    async def run_once(self) -> int:
        """One pass; returns how many rows were missing from the table."""
        async with self._lock:
            if self._stopped:
                return 0  # a login hook that outlived the application
            entries, offset = await asyncio.to_thread(self.reader.read_new)
            rows = [r for r in map(row_from_entry, entries) if r is not None]
            added = 0
            for i in range(0, len(rows), CHUNK):
                async with self.db.session() as s:
                    added += await insert_rows(s, rows[i : i + CHUNK])
            self.reader.commit(offset)
        if added:
            log.info("queue_log: %d queue events caught up (of %d lines)", added, len(entries))
        self.added += added
        return added

    async def start(self) -> None:
        self._stopped = False
        self._task = asyncio.create_task(self._loop(), name="queue-log-catchup")

    async def stop(self) -> None:
        self._stopped = True
        # A pass under way (the loop's or a login hook's) finishes its writes
        # first: a write cancelled half-way can leave SQLite's write lock held.
        try:
            await asyncio.wait_for(self._lock.acquire(), 30)
            self._lock.release()
        except TimeoutError:
            log.warning("queue_log catch-up: a pass still under way after 30 s is cancelled")
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - next pass retries from the same offset
                log.exception("queue_log catch-up failed")
