"""Fixtures that run the real parts: Asterisk (PBX and carrier) and the application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from core.clock import Clock
from hotline.app import Application
from tests.lab import Lab


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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(carrier: Lab, clock: Clock) -> AsyncIterator[Application]:
    application = Application(carrier.settings, clock=clock, scheduler_interval=2)
    async with application:
        await application.ami.wait_logged_in(30)
        await application.scheduler.reconciled.wait()
        yield application
