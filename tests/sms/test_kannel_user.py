"""Started by root with a user to run as, Kannel's boxes run as that user (here the
unprivileged ``nobody``), own their folder, and still bind the SMSC and take SMS."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.status import sms_online
from sms.kannel import Kannel, RunAs
from sms.kannel import status as kannel_status
from tests.sms.conftest import PORTS, SMSC_PASSWORD, eventually, needs_kannel, sms_settings
from tests.sms.smsc import SMSC

pytestmark = [
    needs_kannel,
    pytest.mark.skipif(os.geteuid() != 0, reason="drops from root to another user"),
]


@pytest.fixture
def open_home() -> Iterator[Path]:
    """A home the other user can pass through (pytest's tmp_path is root's alone)."""
    home = Path(tempfile.mkdtemp(prefix="kannel-user-"))
    home.chmod(0o755)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


async def test_the_boxes_run_as_the_given_user(open_home: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    settings = sms_settings(
        open_home, f"sqlite:///{open_home / 'h.db'}", f"ku{uuid.uuid4().hex[:6]}"
    )
    kannel = Kannel(settings, run_as=RunAs(nobody.pw_uid, nobody.pw_gid))
    # a configuration and a store left by root before: handed over too
    kannel.folder.mkdir(parents=True, exist_ok=True)
    (kannel.folder / "bearerbox.log").write_text("")
    smsc = SMSC("127.0.0.1", PORTS["smsc"], "hotline", SMSC_PASSWORD)
    await smsc.start()
    try:
        await asyncio.to_thread(kannel.start)
        await asyncio.wait_for(smsc.bound.wait(), 20)
        for box in ("bearerbox", "smsbox"):
            pid = kannel.pid(box)
            assert pid is not None and _uid_of(pid) == nobody.pw_uid, box
        st = kannel.conf_path.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (nobody.pw_uid, 0o600)
        assert kannel.folder.stat().st_uid == nobody.pw_uid

        async def online():  # type: ignore[no-untyped-def]
            state = await asyncio.to_thread(kannel_status, settings)
            return state if sms_online({"running": True, **state}) else None

        await eventually(online, what="the SMSC link online with the boxes as nobody")
    finally:
        await asyncio.to_thread(kannel.stop)
        await smsc.stop()
