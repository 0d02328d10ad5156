"""Fixtures shared by every test: the databases (SQLite and PostgreSQL) and the
Asterisk lab (PBX, carrier and the application).

The lab is one per test session, whichever directory a test is in: two would
want the same ports.  A test that needs another configuration changes it on
this lab (and puts it back), it does not build a second one.
"""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy.engine import make_url

from accounts import passwords
from core.clock import Clock
from core.db import Database
from hotline.app import Application
from tests.browser import chromium
from tests.lab import Lab
from tests.schema import PG_ADMIN_URL, migrated


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as e:
        return str(e).strip().splitlines()[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind; PostgreSQL's is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.db'}"
        return
    problem = _pg_reachable()
    if problem:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    name = f"hotline_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A database of each kind, at the newest schema."""
    await asyncio.to_thread(migrated, database_url)
    database = Database(database_url)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the Asterisk lab needs root (chroot, bind mounts)")
    lab = Lab.build(tmp_path_factory.mktemp("lab"))
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()  # also when a start failed half-way: no instance or mount left behind


@pytest.fixture(scope="session")
async def carrier(lab: Lab) -> AsyncIterator[Lab]:
    await lab.carrier.connect()
    await lab.carrier.wait_registered(60)
    yield lab
    await lab.carrier.close()


@pytest.fixture(autouse=True)
async def _no_call_left(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After a test on the lab, every call it left up is hung up before the next starts.

    A call still talking (a long ``hold``) would keep an agent busy, a pop on
    their screen and a member paused at the next test's handover.
    """
    yield
    if "carrier" in request.fixturenames:
        lab: Lab = request.getfixturevalue("carrier")
        await lab.carrier.hangup_all()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Argon2id at argon2-cffi's CHEAPEST parameters, its profile for tests.

    The suite makes and signs in thousands of accounts; at the product's cost
    (64 MiB and 3 passes, about 0.15 s a hash here) that was minutes of CPU.
    The hashing and checking code is the product's; its parameters are tested
    in tests/accounts/test_passwords.py, and an application started as its own
    process (``hotline run``, the wheel's test) hashes at them.
    """
    cheapest = PasswordHasher.from_parameters(profiles.CHEAPEST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passwords, "_hasher", cheapest)
        # what an unknown name is checked against costs what a real account does
        mp.setattr(passwords, "_DUMMY", cheapest.hash("not a real password"))
        yield


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(carrier: Lab, clock: Clock) -> AsyncIterator[Application]:
    application = Application(carrier.settings, clock=clock, scheduler_interval=2)
    async with application:
        await application.ami.wait_logged_in(30)
        await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
        yield application
    # Anything the application left unclosed (a socket, a Redis connection)
    # is reported now, against this test, not whenever the collector runs.
    gc.collect()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    async with chromium() as b:
        yield b
