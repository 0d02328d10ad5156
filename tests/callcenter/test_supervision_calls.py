"""Supervisors in real calls: the carrier's caller reaches an agent's phone, a
supervisor's desk phone (the carrier's, playing its own tone and recording what
it hears) is rung into the call in listen, whisper or barge mode; what each side
heard (the desk phone, the agent's phone and the caller, each recorded on the
carrier) is checked by its spectrum, and the audit row by its fields."""

from __future__ import annotations

import asyncio
import random
import wave
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from sqlalchemy import select

from accounts.identity import Actor
from callcenter.models import Call, SpyMode, Supervision
from callcenter.supervision import SupervisionRefused, Supervisor
from hotline.app import Application
from hotline.carrier import AGENT_TONE_HZ, CALLER_TONE_HZ, SUPERVISOR_TONE_HZ
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk

DESK = "1901"
SUPERVISOR = Supervisor(user_id=7, name="Giám sát Hà", extension=DESK)


def band_share(path: Path, hz: float, width: float = 25) -> float:
    """The share of a 16-bit mono wav's power within ``width`` Hz of ``hz``."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    assert data.size > rate, f"{path}: under a second of audio"
    power = np.abs(np.fft.rfft(data)) ** 2
    freqs = np.fft.rfftfreq(data.size, 1 / rate)
    total = float(power[1:].sum())
    assert total > 0, f"{path}: silence"
    return float(power[(freqs > hz - width) & (freqs < hz + width)].sum()) / total


async def talking_agent(app: Application, number: str) -> tuple[str, str]:
    """The agent who answered the caller ``number``: (extension, the call's uniqueid)."""

    async def probe() -> tuple[str, str] | None:
        async with app.db.session() as s:
            call = await s.scalar(select(Call).where(Call.caller_number == number))
        if call is None or call.answered_at is None or not call.agent_extension:
            return None
        return call.agent_extension, call.uniqueid

    return await eventually(probe, timeout=60)


async def pbx_channel(app: Application, uniqueid: str) -> str | None:
    events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return next(
        (e["Channel"] for e in events if e.get("Event") == "CoreShowChannel"
         and e.get("Uniqueid") == uniqueid),
        None,
    )  # fmt: skip


async def audit_row(app: Application, channel_id: str) -> Supervision | None:
    async with app.db.session() as s:
        return await s.scalar(select(Supervision).where(Supervision.channel_id == channel_id))


async def supervise(app: Application, lab: Lab, mode: SpyMode) -> tuple[str, str, Supervision]:
    """A caller reaches an agent; the supervisor joins in ``mode`` for a few seconds and
    hangs up; then the caller.  Returns the agent, the caller's number and the audit row."""
    number = "09" + "".join(random.choices("0123456789", k=8))
    await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=60)
    agent, uniqueid = await talking_agent(app, number)
    await asyncio.sleep(1)  # the agent's channel is bridged to the caller's
    started = await app.supervision.start(SUPERVISOR, agent, mode)
    assert started.call_uniqueid == uniqueid
    supervisor_up = await eventually(lambda: pbx_channel(app, started.channel_id), timeout=20)

    # while the supervisor is in the call, their phone is busy
    with pytest.raises(SupervisionRefused) as refused:
        await app.supervision.start(SUPERVISOR, agent, SpyMode.BARGE)
    assert refused.value.reason == "supervisor_busy"

    await asyncio.sleep(6)
    row = await audit_row(app, started.channel_id)
    assert row is not None and row.ended_at is None
    await app.ami.action({"Action": "Hangup", "Channel": supervisor_up})

    async def ended() -> Supervision | None:
        r = await audit_row(app, started.channel_id)
        return r if r is not None and r.ended_at is not None else None

    row = await eventually(ended, timeout=20)
    await asyncio.sleep(2)  # the agent goes on hearing only the caller
    await lab.carrier.hangup_all()
    await asyncio.sleep(1.5)  # MixMonitor closes its files as the channels end
    return agent, number, row


async def test_listen_hears_the_caller_and_is_audited(carrier: Lab, app: Application):
    agent, _number, row = await supervise(app, carrier, SpyMode.LISTEN)
    assert row.mode == "listen" and row.result == "ended"
    assert row.user_id == 7 and row.username == "Giám sát Hà"
    assert row.supervisor_extension == DESK and row.agent_extension == agent
    assert row.started_at < row.ended_at

    heard = carrier.carrier.heard(DESK)[-1]
    assert band_share(heard, CALLER_TONE_HZ) > 0.2, "the supervisor hears the caller"
    assert band_share(heard, AGENT_TONE_HZ) > 0.2, "... and the agent"


async def test_whisper_reaches_the_agent_and_not_the_caller(carrier: Lab, app: Application):
    await carrier.carrier.record_heard(True)
    try:
        agent, number, row = await supervise(app, carrier, SpyMode.WHISPER)
    finally:
        await carrier.carrier.record_heard(False)
    assert row.mode == "whisper" and row.result == "ended"

    agent_heard = carrier.carrier.heard(agent)[-1]
    assert band_share(agent_heard, SUPERVISOR_TONE_HZ) > 0.05, "the agent hears the supervisor"
    assert band_share(agent_heard, CALLER_TONE_HZ) > 0.2, "... beside the caller"
    async with app.db.session() as s:
        call = await s.scalar(select(Call).where(Call.caller_number == number))
    assert call is not None and call.recording_agent
    # what the caller heard: the agent's side of the call's recording
    caller_heard = Path(call.recording_agent)
    assert band_share(caller_heard, AGENT_TONE_HZ) > 0.5, "the caller hears the agent"
    assert band_share(caller_heard, SUPERVISOR_TONE_HZ) < 0.01, "... and not the supervisor"
    # ... nor does the caller's own phone (the carrier records what it received)
    really_heard = carrier.carrier.heard(f"caller{number}")[-1]
    assert band_share(really_heard, AGENT_TONE_HZ) > 0.2, "the caller's phone hears the agent"
    assert band_share(really_heard, SUPERVISOR_TONE_HZ) < 0.01, "... not the supervisor"


async def test_barge_is_heard_by_both_the_caller_and_the_agent(carrier: Lab, app: Application):
    await carrier.carrier.record_heard(True)
    try:
        agent, number, row = await supervise(app, carrier, SpyMode.BARGE)
    finally:
        await carrier.carrier.record_heard(False)
    assert row.mode == "barge" and row.result == "ended"

    agent_heard = carrier.carrier.heard(agent)[-1]
    assert band_share(agent_heard, SUPERVISOR_TONE_HZ) > 0.05, "the agent hears the supervisor"
    assert band_share(agent_heard, CALLER_TONE_HZ) > 0.2, "... beside the caller"
    # what the caller's phone received over the trunk
    caller_heard = carrier.carrier.heard(f"caller{number}")[-1]
    assert band_share(caller_heard, SUPERVISOR_TONE_HZ) > 0.05, "the caller hears the supervisor"
    assert band_share(caller_heard, AGENT_TONE_HZ) > 0.2, "... beside the agent"
    # and the supervisor hears them both
    heard = carrier.carrier.heard(DESK)[-1]
    assert band_share(heard, CALLER_TONE_HZ) > 0.2 and band_share(heard, AGENT_TONE_HZ) > 0.2


async def audit_count(app: Application) -> int:
    async with app.db.session() as s:
        return len((await s.scalars(select(Supervision))).all())


async def test_refusals_name_their_reason(carrier: Lab, app: Application):
    free = carrier.settings.agents[0].extension
    before = await audit_count(app)
    with pytest.raises(SupervisionRefused) as refused:
        await app.supervision.start(SUPERVISOR, free, SpyMode.LISTEN)
    assert refused.value.reason == "agent_not_talking"
    no_desk = Supervisor(user_id=8, name="Admin", extension=None)
    with pytest.raises(SupervisionRefused) as refused:
        await app.supervision.start(no_desk, free, SpyMode.LISTEN)
    assert refused.value.reason == "no_extension"
    assert await audit_count(app) == before, "a refusal writes no audit row"


async def test_the_api_starts_a_supervision_and_names_its_refusals(carrier: Lab, app: Application):
    """Through the panel's JSON API of the running application: roles, the mode's
    validation, each refusal with its reason, then a start while an agent talks."""
    accounts = app.panel.accounts
    password = "correct horse battery"
    admin = await accounts.create_user(
        None, {"username": "root", "display_name": "Root", "role": "admin", "password": password}
    )
    boss = Actor.of(admin)
    for username, role, ext in [
        ("desk", "supervisor", DESK),
        ("nodesk", "supervisor", None),
        ("agent9", "agent", carrier.settings.agents[-1].extension),
    ]:
        data = {"username": username, "display_name": username, "role": role, "password": password}
        await accounts.create_user(boss, {**data, **({"extension": ext} if ext else {})})
    s = carrier.settings
    base = f"http://{s.panel.host}:{s.panel.port}/api/v1"
    async with aiohttp.ClientSession() as http:

        async def headers(user: str) -> dict[str, str]:
            r = await http.post(f"{base}/session", json={"username": user, "password": password})
            assert r.status == 200, await r.text()
            return {"Authorization": f"Bearer {(await r.json())['token']}"}

        async def supervise(user: str, ext: str, mode: str, status: int) -> dict[str, Any]:
            r = await http.post(
                f"{base}/agents/{ext}/supervise", json={"mode": mode}, headers=await headers(user)
            )
            assert r.status == status, await r.text()
            return dict(await r.json())

        free = s.agents[0].extension
        assert (await supervise("agent9", free, "listen", 403))["error"]
        assert "mode" in (await supervise("desk", free, "shout", 422))["fields"]
        assert (await supervise("nodesk", free, "listen", 409))["reason"] == "no_extension"
        assert (await supervise("desk", free, "listen", 409))["reason"] == "agent_not_talking"

        number = "09" + "".join(random.choices("0123456789", k=8))
        await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=40)
        agent, uniqueid = await talking_agent(app, number)
        await asyncio.sleep(1)
        started = await supervise("desk", agent, "barge", 202)
        assert started["agent_extension"] == agent and started["supervisor_extension"] == DESK
        assert started["mode"] == "barge" and started["call_uniqueid"] == uniqueid

        async def answered() -> Supervision | None:
            async with app.db.session() as db:
                row = await db.get(Supervision, started["id"])
            return row if row is not None and await phone_up(app, DESK) else None

        row = await eventually(answered, timeout=20)
        assert row.username == "desk" and row.user_id is not None and row.mode == "barge"
        assert (await supervise("desk", agent, "listen", 409))["reason"] == "supervisor_busy"


async def phone_up(app: Application, extension: str) -> bool:
    events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return any(
        e.get("Event") == "CoreShowChannel" and str(e.get("Channel", "")).startswith(
            f"PJSIP/{extension}-") and e.get("ChannelStateDesc") == "Up"
        for e in events
    )  # fmt: skip
