"""A registering, authenticating trunk and TLS/SRTP phones, through the real Asterisk.

The lab's configuration is changed for each test (and put back, with the
carrier's): the carrier becomes a registrar that wants our account's
password for our REGISTERs and our calls, and authenticates its own calls to
us; or the agents' phones register over TLS (checking a certificate made for
this test) and talk SRTP.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from callcenter.models import Outcome
from core.settings import Settings, ensure_secrets, load_settings, secrets_path
from dialplan import prompts
from hotline import status as st
from hotline import system
from hotline.app import Application
from hotline.carrier import AGENT_TONE_HZ, CALLER_TONE_HZ
from tests.agi.test_calls import dominant_hz, ended_record, new_number, record_of
from tests.agi.test_emergency_calls import emergency_config
from tests.helpers import self_signed_cert
from tests.lab import CARRIER, Lab, eventually

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "842838221022"


@contextmanager
def changed_files(*paths: Path) -> Iterator[None]:
    """Put the files back as they were (or gone) whatever the test did to them."""
    before = {p: p.read_bytes() if p.exists() else None for p in paths}
    try:
        yield
    finally:
        for p, data in before.items():
            if data is None:
                p.unlink(missing_ok=True)
            else:
                p.write_bytes(data)


def set_trunk_password(settings: Settings, password: str) -> None:
    """What an operator does: the carrier's password under [trunk] in the secrets file."""
    path = secrets_path(settings.state_dir)
    stored = tomllib.loads(path.read_text())
    stored.setdefault("trunk", {})["password"] = password
    path.write_text(tomli_w.dumps(stored))


async def status_cli(settings: Settings) -> subprocess.CompletedProcess[str]:
    """``hotline status`` as an operator runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "hotline.cli", "status", "--config", str(settings.config_path)]
    return await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=60, env=env
    )


def registration(lab: Lab, settings: Settings) -> dict[str, str]:
    shown = lab.pbx.cli("pjsip show registrations")
    return st.trunk_registration(shown, settings.trunk.name)


async def until_registration(lab: Lab, settings: Settings, state: str) -> dict[str, str]:
    async def probe() -> dict[str, str] | None:
        reg = await asyncio.to_thread(registration, lab, settings)
        return reg if reg["state"] == state else None

    return await eventually(probe, 30, every=0.5)


@asynccontextmanager
async def application(settings: Settings) -> AsyncIterator[Application]:
    app = Application(settings, scheduler_interval=2)
    async with app:
        await app.ami.wait_logged_in(30)
        await asyncio.wait_for(app.scheduler.reconciled.wait(), 30)
        yield app


async def restore(lab: Lab, path: Path) -> None:
    """The lab as it was: the carrier first (its phones back on UDP), then the PBX."""
    settings = load_settings(path, env={})
    lab.carrier.verify_tls = False
    await asyncio.to_thread(lab.carrier.reconfigure, settings)
    await system.reload(settings, lab.pbx)
    await phones_on(lab, "udp")
    await lab.carrier.wait_registered(60)


def pbx_contacts(lab: Lab) -> dict[str, str]:
    """Each registered extension's contact URI, as the PBX holds it."""
    shown = lab.pbx.cli("pjsip show contacts")
    return dict(re.findall(r"Contact:\s+(\d+)/(\S+)", shown))


async def phones_on(lab: Lab, transport: str) -> dict[str, str]:
    """Wait until every agent's phone is registered at the PBX over ``transport``."""
    want = {a.extension for a in lab.settings.agents}
    seen: dict[str, str] = {}

    async def probe() -> dict[str, str] | None:
        seen.clear()
        seen.update(await asyncio.to_thread(pbx_contacts, lab))
        tls = {e for e, uri in seen.items() if "transport=tls" in uri.lower()}
        on = tls if transport == "tls" else set(seen) - tls
        return dict(seen) if want <= on else None

    try:
        return await eventually(probe, 60, every=0.5)
    except AssertionError:
        raise AssertionError(f"phones not all on {transport}: {seen}") from None


async def agent_channel(app: Application) -> str:
    """The PBX's channel to the agent's phone of the one call up."""

    async def probe() -> str | None:
        events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        for e in events:
            chan = str(e.get("Channel", ""))
            if (
                e.get("Event") == "CoreShowChannel"
                and chan.startswith("PJSIP/")
                and not chan.startswith(f"PJSIP/{app.settings.trunk.name}-")
                and e.get("ChannelStateDesc") == "Up"
            ):
                return chan
        return None

    return await eventually(probe, 40)


async def secure(app: Application, channel: str) -> tuple[str, str]:
    """Whether the channel's signalling came over TLS, and its media is SRTP ("1" each)."""
    out = []
    for name in ("CHANNEL(pjsip,secure)", "CHANNEL(rtp,secure)"):
        got = await app.ami.action({"Action": "Getvar", "Channel": channel, "Variable": name})
        out.append(str(got.get("Value")))
    return out[0], out[1]


def banned_on(line: str, folder: Path) -> list[str]:
    """The addresses Debian's fail2ban ``asterisk`` filter finds in a log line."""
    tool, stock = shutil.which("fail2ban-regex"), Path("/etc/fail2ban/filter.d/asterisk.conf")
    if tool is None or not stock.exists():
        pytest.fail("fail2ban missing: ./setup.sh --deps-only installs Debian's fail2ban")
    one = folder / "refused.log"
    one.write_text(line + "\n")
    done = subprocess.run(
        [tool, "-o", "ip", str(one), str(stock)], capture_output=True, text=True, timeout=60
    )
    return done.stdout.split()


# ---- the trunk ---------------------------------------------------------------


def registering(original: str) -> dict[str, Any]:
    # key 0 then 1 calls 113 out through the trunk: the carrier challenges that too
    cfg = emergency_config(original)
    del cfg["trunk"]["contact"]  # calls go to the registrar
    cfg["trunk"].update(
        register=True,
        server=f"{CARRIER.trunk_ip}:{CARRIER.sip_port}",
        username=ACCOUNT,
        inbound_username="carrier-in",
        # recognised by the registration alone: not by its address
        match=[],
        retry_seconds=5,
    )
    return cfg


async def test_a_registering_trunk_authenticated_both_ways(carrier: Lab, tmp_path: Path):
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    secrets = secrets_path(lab.settings.state_dir)
    try:
        with changed_files(path, secrets):
            path.write_text(tomli_w.dumps(registering(path.read_text())))
            settings = load_settings(path, env={})
            await asyncio.to_thread(prompts.generate, settings)  # the 113 menu's prompt
            ensure_secrets(settings)  # the password the carrier's calls must give us
            # the operator typed the carrier's password wrong
            set_trunk_password(settings, "typed-wrong")
            settings = load_settings(path, env={})
            await asyncio.to_thread(
                lab.carrier.reconfigure, settings, registrar_password="the-carriers-one"
            )
            await system.reload(settings, lab.pbx)

            reg = await until_registration(lab, settings, "Rejected")
            assert reg["server"] == f"sip:{CARRIER.trunk_ip}:{CARRIER.sip_port}"
            assert not await asyncio.to_thread(lab.carrier.pbx_registered)
            # between tries Asterisk shows it Unregistered a moment: poll as a person would
            rejected = (
                f"trunk carrier: FAILING: Rejected at sip:{CARRIER.trunk_ip}:{CARRIER.sip_port} "
                "(check trunk.username and its password)"
            )

            async def said() -> subprocess.CompletedProcess[str] | None:
                done = await status_cli(settings)
                assert "trunk carrier: registered" not in done.stdout, done.stdout
                return done if rejected in done.stdout else None

            assert (await eventually(said, 30, every=0.5)).returncode == 3

            # corrected, and reloaded: it registers again by itself
            set_trunk_password(settings, "the-carriers-one")
            settings = load_settings(path, env={})
            await system.reload(settings, lab.pbx)
            await until_registration(lab, settings, "Registered")
            assert await asyncio.to_thread(lab.carrier.pbx_registered)
            done = await status_cli(settings)
            assert f"trunk carrier: registered at sip:{CARRIER.trunk_ip}" in done.stdout

            async with application(settings) as app:
                # the carrier calls the contact we registered and answers our challenge
                number = new_number()
                await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=8)
                # the phones are still on UDP and plain RTP, and the check says so
                assert await secure(app, await agent_channel(app)) == ("0", "0")
                call = await ended_record(app, number, timeout=60)
                assert call.outcome == Outcome.ANSWERED
                assert call.queue and call.queue.startswith("t1022-")
                assert call.agent_extension is not None

                # and our call out to 113 answers the carrier's challenge
                desk: list[dict[str, str]] = []

                async def heard(event: Any) -> None:
                    if event.get("UserEvent") == "EmergencyAnswered":
                        desk.append(dict(event))

                assert lab.carrier.ami is not None
                lab.carrier.ami.subscribe(["UserEvent"], heard)
                urgent = new_number()
                await lab.carrier.call(
                    "1022", caller_id=f"<{urgent}>", digits="0", wait2=1.0, digits2="1", hold=20
                )
                call = await ended_record(app, urgent, timeout=60)
                assert call.ivr_path == "0:emergency > 1:call:113 > dial:answer"
                assert [e["Number"] for e in desk if e.get("Caller") == urgent] == ["113"]

                # a carrier that gives the wrong password is not let in
                log = settings.asterisk_dir / "log" / "messages.log"
                seen = log.stat().st_size
                await asyncio.to_thread(
                    lab.carrier.reconfigure, settings, inbound_password="not-ours"
                )
                stranger = new_number()
                await lab.carrier.call("1022", caller_id=f"<{stranger}>", digits="1", hold=4)

                def refused() -> str | None:
                    with log.open(errors="replace") as fh:
                        fh.seek(seen)
                        lines = fh.read().splitlines()
                    return next((ln for ln in lines if "Failed to authenticate" in ln), None)

                line = await eventually(lambda: asyncio.to_thread(refused), 20)
                await asyncio.sleep(3)
                assert await record_of(app, stranger) is None
                # what fail2ban's own Asterisk filter bans the address on
                assert await asyncio.to_thread(banned_on, line, tmp_path) == [CARRIER.trunk_ip]
    finally:
        await restore(lab, path)  # once the files are back (changed_files)


# ---- the phones --------------------------------------------------------------


async def test_a_tls_phone_with_srtp_takes_a_queue_call_and_both_sides_are_heard(carrier: Lab):
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    try:
        with changed_files(path):
            cert, key = self_signed_cert(lab.home / "tls", lab.settings.asterisk.bind_address)
            cfg = tomllib.loads(path.read_text())
            cfg["asterisk"].update(tls=True, tls_cert=str(cert), tls_key=str(key), srtp="required")
            path.write_text(tomli_w.dumps(cfg))
            settings = load_settings(path, env={})
            await system.reload(settings, lab.pbx)
            transports = await asyncio.to_thread(lab.pbx.cli, "pjsip show transports")
            srtp = await asyncio.to_thread(lab.pbx.cli, "module show like res_srtp")
            assert re.search(r"res_srtp\.so\s.*Running", srtp), srtp
            listens = f"{settings.asterisk.bind_address}:{settings.asterisk.tls_port}"
            assert re.search(rf"transport-tls\s+tls\s.*\s{re.escape(listens)}\b", transports)
            # the phones check the certificate: it must be the one we made
            lab.carrier.verify_tls = True
            await asyncio.to_thread(lab.carrier.reconfigure, settings)
            await phones_on(lab, "tls")

            async with application(settings) as app:
                number = new_number()
                await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=10)

                channel = await agent_channel(app)
                # signalling over TLS, media over SRTP
                assert await secure(app, channel) == ("1", "1")
                call = await ended_record(app, number, timeout=60)
    finally:
        await restore(lab, path)  # once the file is back (changed_files)

    assert call.outcome == Outcome.ANSWERED
    assert call.agent_extension is not None and channel.startswith(f"PJSIP/{call.agent_extension}-")
    await asyncio.sleep(1)  # MixMonitor closes its files as the bridge ends
    hz_in, rms_in = dominant_hz(call.recording_caller)
    hz_out, rms_out = dominant_hz(call.recording_agent)
    assert abs(hz_in - CALLER_TONE_HZ) < 15, "caller's side holds the caller's voice"
    assert abs(hz_out - AGENT_TONE_HZ) < 15, "the SRTP phone's voice was decrypted"
    assert rms_in > 1000 and rms_out > 1000, "both sides are far from silent"
