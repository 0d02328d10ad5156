"""Database base, engines and sessions (SQLAlchemy 2).

The configured URL names the database (``sqlite:///path`` or
``postgresql://...``); this module picks the drivers: aiosqlite or psycopg 3
for the application's async engine, the plain sqlite3 / psycopg drivers for
Alembic's synchronous one.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection, DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model; constraint names are stable for migrations."""

    metadata = MetaData(naming_convention=NAMING)


def _scheme(url: str) -> tuple[str, str]:
    m = re.match(r"^(sqlite|postgresql)(?:\+\w+)?(://.*)$", url)
    if not m:
        raise ValueError(f"unsupported database URL {url!r}")
    return m.group(1), m.group(2)


def async_url(url: str) -> str:
    kind, rest = _scheme(url)
    return f"sqlite+aiosqlite{rest}" if kind == "sqlite" else f"postgresql+psycopg{rest}"


def sync_url(url: str) -> str:
    kind, rest = _scheme(url)
    return f"sqlite{rest}" if kind == "sqlite" else f"postgresql+psycopg{rest}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the panel read while the call path writes; the busy timeout
    # makes concurrent writers wait instead of failing under a call flood.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def install_sqlite_pragmas(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)


#: How long a writer waits for the gate, as SQLite's own busy timeout (10 s).
WRITE_WAIT = 10.0
_READS = ("SELECT", "PRAGMA", "EXPLAI")


class WriterGate:
    """One writing transaction at a time among this process's SQLite connections.

    SQLite has one writer: a second connection that writes meanwhile gets
    SQLITE_BUSY, and its busy handler sleeps and tries again, 1, 2, 5, 10 … up
    to 100 ms at a time.  With a dozen writers in flight (notifications going
    out while delivery reports come in) they spent most of their time asleep
    with the database free.  So, within a process, a connection waits here (an
    asyncio lock, woken as soon as the writer before it has committed) from its
    first write statement until its commit or rollback has run; reads never
    wait.  Other processes still meet SQLite's own lock and busy timeout.  A
    write that waits longer than :data:`WRITE_WAIT` fails as SQLite's would:
    "database is locked".

    The holder is known by its pool record's ``info`` dict, which stays the
    same object for the record's life (invalidation clears it, never replaces
    it), so every way a connection can end is recognised without asking the
    connection anything: the dialect's commit and rollback (wrapped here, so
    the next writer is let in only once SQLite has released its lock), and the
    pool's check-in, invalidation, close and detach.  None of these can raise:
    a connection invalidated mid-transaction (at shutdown, on a cancelled task)
    gives the gate back all the same.

    SQLite has no row locks and ignores ``FOR UPDATE``, so a read-modify-write
    (read a record, decide, write it back) could otherwise write its older view
    over what another writer committed between the read and the write.  Here a
    ``SELECT ... FOR UPDATE`` (``with_for_update()``, ``get(...,
    with_for_update=True)``) first makes its transaction the writer (``BEGIN
    IMMEDIATE``, through the gate), so what it reads stays the latest until it
    commits, as PostgreSQL's row lock does.

    The statements run in SQLAlchemy's greenlet (the async engine), where
    ``await_only`` may wait for the lock.
    """

    def __init__(self, engine: Engine) -> None:
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._holder: dict[object, object] | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "before_execute", self._for_update)
        dialect = engine.dialect
        for name in ("do_commit", "do_rollback"):
            setattr(dialect, name, self._releasing(getattr(dialect, name)))
        for name in ("checkin", "invalidate", "close", "detach"):
            event.listen(engine.pool, name, self._pool_event)

    def _lock_here(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop, self._holder = asyncio.Lock(), loop, None
            self._thread = threading.get_ident()
        return self._lock

    def _before(self, conn, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip()[:6].upper() in _READS:
            return
        info = conn.connection.info  # a live connection: about to execute
        if info is self._holder:
            return
        lock = self._lock_here()
        try:
            if lock.locked():
                await_only(asyncio.wait_for(lock.acquire(), WRITE_WAIT))
            else:  # free: taken at once, with no task made for the wait
                await_only(lock.acquire())
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holder = info

    def _for_update(self, conn, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        if getattr(statement, "_for_update_arg", None) is None:
            return
        if conn.connection.driver_connection.in_transaction:
            # a write already ran: this transaction holds the gate and SQLite's lock
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _releasing(self, method: Callable[[object], None]) -> Callable[[object], None]:
        def after(connection: object) -> None:
            try:
                method(connection)
            finally:
                if self._holder is not None:
                    self._release(_info_of(connection))

        return after

    def _pool_event(self, _dbapi_connection, record, *_rest) -> None:  # type: ignore[no-untyped-def]
        if self._holder is not None:
            self._release(_info_of(record))

    def _release(self, info: object) -> None:
        if info is None or info is not self._holder:
            return
        if threading.get_ident() != self._thread and self._loop is not None:
            # a connection collected on another thread: let the loop do it
            self._loop.call_soon_threadsafe(self._release, info)
            return
        self._holder = None
        if self._lock is not None and self._lock.locked():
            self._lock.release()


def _info_of(connection: object) -> object:
    """A pool record's or proxied connection's ``info``, or None where it has none."""
    try:
        return connection.info  # type: ignore[attr-defined]
    except Exception:  # an ad hoc connection (the dialect's first connect) has none
        return None


def make_engine(url: str) -> AsyncEngine:
    """The application's async engine for ``url``."""
    kind, _ = _scheme(url)
    if kind == "sqlite":
        # A connection is a thread of aiosqlite's and a few PRAGMAs to open:
        # keep enough for the AMI lanes and the panel side by side, so a
        # screen-pop's reads never wait for one to be opened.
        engine = create_async_engine(async_url(url), pool_size=16, max_overflow=16)
    else:
        # Connections beyond pool_size are closed as soon as they are given
        # back, and opening one costs PostgreSQL a process: keep enough for a
        # busy panel (dozens of requests in flight) without churn.
        engine = create_async_engine(
            async_url(url), pool_size=32, max_overflow=8, pool_pre_ping=True
        )
    install_sqlite_pragmas(engine.sync_engine)
    if kind == "sqlite":
        WriterGate(engine.sync_engine)
    return engine


T = TypeVar("T")

#: Threads (each with its own SQLite connection) for :meth:`Database.read`.
READERS = 2


class Database:
    """Owns the engine; hands out short-lived sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: short reads (:meth:`read`) run whole on threads of their own with
        # the plain sqlite3 driver (the threads are started by the first read)
        self.reader: Engine | None = None
        kind, rest = _scheme(url)
        if kind == "sqlite" and rest not in ("://", ":///:memory:"):  # a file: shared
            self.reader = create_engine(sync_url(url), pool_size=READERS, max_overflow=0)
            install_sqlite_pragmas(self.reader)
        self._readers: ThreadPoolExecutor | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session committed on success, rolled back on error, always closed."""
        async with self.sessions() as s:
            try:
                yield s
                await s.commit()
            except BaseException:
                await s.rollback()
                raise

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)``, a short read of Core statements, and its result.

        For the busiest reads (the public status look-up).  On SQLite the whole
        of ``fn`` runs on a reader thread with the plain sqlite3 driver: one
        hand-over between the loop and that thread, where aiosqlite's adapter
        makes one for the cursor, the statement, the fetch and the rollback,
        and SQLAlchemy's work there is off the loop.  WAL lets those readers
        run beside the writers.  On PostgreSQL ``fn`` runs on the async
        engine's connection (``run_sync``).  Either way the connection is
        rolled back when given back: ``fn`` must not write.
        """
        if self.reader is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        if self._readers is None:
            self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="db-read")
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        assert self.reader is not None
        with self.reader.connect() as conn:
            return fn(conn)

    async def close(self) -> None:
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        if self.reader is not None:
            self.reader.dispose()
        await self.engine.dispose()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone; PostgreSQL's timestamptz does.  Either way the
    application only ever sees aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
