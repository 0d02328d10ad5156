"""Transfers in real calls through the test carrier: an agent of the 1022 team hands
the caller on, blind, to the Party team's queue (another agent answers, and their
screen-pop carries the first agent's note and draft), to another agent's own
extension (the same pop), to an agency's number and to 113 over the trunk (the
carrier's side answers and hears the caller), or attended to a supervisor's phone.
The call's recording goes on across the transfer: both sides hold sound from before
and after it, checked by their spectrum (what the caller heard too); the chain keeps
who transferred to whom, and the talk time adds up every answered leg."""

from __future__ import annotations

import asyncio
import random
import tomllib
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import tomli_w
from sqlalchemy import select

from accounts.identity import Actor
from accounts.models import User
from callcenter.models import Call
from callcenter.transfers import Transferrer
from core.ami import Event
from core.settings import load_settings
from hotline import system
from hotline.app import Application
from hotline.carrier import AGENT_TONE_HZ, CALLER_TONE_HZ, SUPERVISOR_TONE_HZ
from tests.lab import CARRIER, Lab, eventually
from tests.panel.test_presence import Listener
from tickets.models import Agency

pytestmark = pytest.mark.asterisk

AGENCY_PHONE = "028 3822 5117"
AGENCY_NUMBER = "02838225117"


@pytest.fixture
async def trunk_app(carrier: Lab) -> AsyncIterator[Application]:
    """The application with a trunk contact: calls go out through the carrier."""
    path = carrier.home / "config" / "hotline.toml"
    original = path.read_text()
    cfg = tomllib.loads(original)
    cfg["trunk"]["contact"] = f"sip:{CARRIER.trunk_ip}:{CARRIER.sip_port}"
    path.write_text(tomli_w.dumps(cfg))
    try:
        settings = load_settings(path, env={})
        await system.reload(settings, carrier.pbx)
        application = Application(settings, scheduler_interval=2)
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
            yield application
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), carrier.pbx)


@pytest.fixture
async def caller_ears(carrier: Lab) -> AsyncIterator[None]:
    """The callers' phones (on the carrier) record what they hear during the test."""
    await carrier.carrier.record_heard(True)
    try:
        yield
    finally:
        await carrier.carrier.record_heard(False)


def caller_heard(lab: Lab, number: str) -> Path:
    """What the caller's own phone heard (the carrier's recording, ``caller_ears``)."""
    (path,) = sorted(lab.carrier.heard_dir.glob(f"caller{number}-*-in.wav"))
    return path


def new_number() -> str:
    return "09" + "".join(random.choices("0123456789", k=8))


def share(path: Path, hz: float, start: float, end: float | None = None) -> float:
    """The share of the power within 25 Hz of ``hz`` in seconds ``start`` to ``end``
    (negative: from the end) of a 16-bit mono wav."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    n = data.size
    a = int((start if start >= 0 else n / rate + start) * rate)
    b = n if end is None else int((end if end >= 0 else n / rate + end) * rate)
    part = data[max(0, a) : min(n, b)]
    assert part.size > rate // 2, f"{path}: under half a second of audio there"
    power = np.abs(np.fft.rfft(part)) ** 2
    freqs = np.fft.rfftfreq(part.size, 1 / rate)
    total = float(power[1:].sum())
    assert total > 0, f"{path}: silence there"
    return float(power[(freqs > hz - 25) & (freqs < hz + 25)].sum()) / total


def seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


async def answered_call(app: Application, number: str) -> Call:
    """The caller ``number``'s call once an agent talks to them."""

    async def probe() -> Call | None:
        async with app.db.session() as s:
            call = await s.scalar(select(Call).where(Call.caller_number == number))
        return call if call is not None and call.answered_at and call.agent_extension else None

    return await eventually(probe, timeout=60)


async def record(app: Application, call_id: int) -> Call:
    async with app.db.session() as s:
        call = await s.get(Call, call_id)
    assert call is not None
    return call


async def talking(app: Application, extension: str) -> bool:
    events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return any(
        e.get("Event") == "CoreShowChannel"
        and str(e.get("Channel", "")).startswith(f"PJSIP/{extension}-")
        and e.get("BridgeId")
        for e in events
    )


async def start_call(app: Application, lab: Lab) -> tuple[str, Call]:
    """A caller of the 1022 hotline talking to an agent of its team for 3 s."""
    number = new_number()
    await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=90)
    call = await answered_call(app, number)
    assert call.team_id == "t1022" and call.agent_extension
    await eventually(lambda: talking(app, call.agent_extension or ""), timeout=10)
    await asyncio.sleep(3)  # the first leg's sound, recorded
    return number, call


async def ended(app: Application, call_id: int) -> Call:
    async def probe() -> Call | None:
        c = await record(app, call_id)
        return c if c.ended_at is not None else None

    call = await eventually(probe, timeout=30)
    await asyncio.sleep(1.5)  # MixMonitor closes its files as the channel ends
    return call


def assert_recorded_across(call: Call, leg1: float, leg2: float) -> None:
    """Both sides of the call's recording hold the first leg and the second: what the
    caller said (440 Hz) and what they heard (the agents' and services' 1000 Hz)."""
    assert call.recording_caller and call.recording_agent
    said, heard = Path(call.recording_caller), Path(call.recording_agent)
    for side in (said, heard):
        assert seconds(side) >= leg1 + leg2 - 1.5, f"{side}: {seconds(side):.1f} s, not both legs"
    # what the caller said, before the transfer and after it
    assert share(said, CALLER_TONE_HZ, 0.3, leg1 - 0.5) > 0.5
    assert share(said, CALLER_TONE_HZ, -leg2 + 0.5, -0.3) > 0.5
    # what the caller heard: the first agent, then who took the call
    assert share(heard, AGENT_TONE_HZ, 0.3, leg1 - 0.5) > 0.5
    assert share(heard, AGENT_TONE_HZ, -leg2 + 0.5, -0.3) > 0.5, f"{heard}: the second leg"


def assert_talked_across(call: Call, link: Any) -> None:
    """The record's talk time is both legs': the first agent's up to the transfer and
    the target's from its answer to the end (not the wait between them)."""
    assert call.answered_at and call.ended_at and link.done_at and link.answered_at
    first = (link.done_at - call.answered_at).total_seconds()
    second = (call.ended_at - link.answered_at).total_seconds()
    assert call.talk_seconds is not None
    assert abs(call.talk_seconds - (first + second)) <= 1.5, (call.talk_seconds, first, second)
    assert call.talk_seconds > second + 2, "the first leg is counted too"


async def test_blind_to_another_team_the_next_agent_answers_with_the_note(
    carrier: Lab, app: Application, caller_ears: None
):
    number, call = await start_call(app, carrier)
    first = call.agent_extension or ""
    actor = Transferrer(None, "Lan", first)
    draft = {"description": "Cây đổ chắn đường Lê Lợi", "level": "2", "citizen_phone": "x"}
    row = await app.transfers.blind(
        actor, call.id, "queue:party", note="Người dân hỏi về Thành ủy", draft=draft
    )
    assert row.result == "transferred" and row.detail and row.detail.startswith("party-")
    assert (row.kind, row.target_kind, row.target, row.from_extension) == (
        "blind", "queue", "party", first,
    )  # fmt: skip

    async def second_agent() -> str | None:
        c = await record(app, call.id)
        ext = c.agent_extension
        return ext if ext and ext != first and await talking(app, ext) else None

    second = await eventually(second_agent, timeout=40)
    assert second.startswith("2"), "a Party team agent took the call"
    assert not await talking(app, first), "the first agent's phone is free"

    async def popped() -> dict[str, Any] | None:
        pop = await app.bus.kept(f"pop.{second}")
        return pop if pop and pop.get("uniqueid") == call.uniqueid else None

    pop = await eventually(popped, timeout=10)
    assert pop["call_id"] == call.id
    assert pop["transfer"]["note"] == "Người dân hỏi về Thành ủy"
    assert pop["transfer"]["from_extension"] == first and pop["transfer"]["by"] == "Lan"
    assert pop["transfer"]["draft"] == {"description": "Cây đổ chắn đường Lê Lợi", "level": "2"}

    await asyncio.sleep(4)  # the second leg's sound
    await carrier.carrier.hangup_all()
    done = await ended(app, call.id)
    assert done.agent_extension == second and done.answered_at == call.answered_at
    assert_recorded_across(done, leg1=3, leg2=4)
    assert share(caller_heard(carrier, number), AGENT_TONE_HZ, -3.5, -0.5) > 0.5, (
        "the caller hears the Party agent to the end"
    )
    (chain,) = await app.transfers.chain(call.id)
    assert chain.id == row.id and chain.note == "Người dân hỏi về Thành ủy"
    assert chain.answered_at is not None, "the queue's answer begins the second leg"
    assert_talked_across(done, chain)


async def test_blind_to_an_agents_extension_pops_the_note_and_records_the_leg(
    carrier: Lab, app: Application, caller_ears: None
):
    """``agent:<ext>``: the caller goes to that agent's own phone, not through a queue.
    Their screen gets the pop a queue transfer gives (who handed it on, the note, the
    draft), through the bus the agent's page listens to; the record names them once
    they answer, the recording goes on from their phone, the talk time has both legs."""
    number, call = await start_call(app, carrier)
    first = call.agent_extension or ""
    target = next(a.extension for a in carrier.settings.agents if a.extension != first)
    screen = Listener(app.bus, f"agent.{target}")
    listening = asyncio.create_task(screen.run())
    try:
        await asyncio.wait_for(screen.ready.wait(), 5)
        draft = {"description": "Đèn đường hỏng ở Nguyễn Huệ", "district": "Quận 1"}
        row = await app.transfers.blind(
            Transferrer(None, "Lan", first), call.id, f"agent:{target}",
            note="Anh xem giúp phiếu này", draft=draft,
        )  # fmt: skip
        assert (row.target_kind, row.target, row.result) == ("agent", target, "transferred")
        ring = await screen.next("pop", timeout=20)
        assert ring["phase"] == "ringing" and ring["uniqueid"] == call.uniqueid
        assert ring["call_id"] == call.id and ring["caller"] == call.caller_number
        assert ring["transfer"]["note"] == "Anh xem giúp phiếu này"
        assert ring["transfer"]["by"] == "Lan" and ring["transfer"]["from_extension"] == first
        assert ring["transfer"]["draft"] == draft
        answered = await screen.next("pop", timeout=10)
        assert answered["phase"] == "talking" and answered["transfer"]["id"] == row.id
        kept = await app.bus.kept(f"pop.{target}")
        assert kept and kept["phase"] == "talking", "a reload of their page shows it"

        await eventually(lambda: bridged_with_caller(app, target, call.uniqueid), timeout=10)
        assert not await talking(app, first), "the first agent's phone is free"
        await asyncio.sleep(4)  # the second leg's sound
        await carrier.carrier.hangup_all()
        done = await ended(app, call.id)
        over = await screen.next("pop", timeout=10)
        assert over["phase"] == "ended", "it stays on their screen for the ticket"
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    assert done.agent_extension == target, "the record names who has the call"
    (link,) = await app.transfers.chain(call.id)
    assert link.answered_at is not None
    assert_recorded_across(done, leg1=3, leg2=4)
    assert share(caller_heard(carrier, number), AGENT_TONE_HZ, -3.5, -0.5) > 0.5
    assert_talked_across(done, link)


async def agency(app: Application) -> int:
    async with app.db.session() as s:
        existing = await s.scalar(select(Agency).where(Agency.code == "p-ben-nghe-tr"))
        if existing is not None:
            return existing.id
        now = app.clock.now()
        row = Agency(
            kind="ward", code="p-ben-nghe-tr", name="Phường Bến Nghé", phone=AGENCY_PHONE,
            active=True, created_at=now, updated_at=now, version=1,
        )  # fmt: skip
        s.add(row)
        await s.flush()
        return row.id


async def test_blind_to_an_agency_through_the_api_the_agency_answers(
    carrier: Lab, trunk_app: Application
):
    """Through the panel's JSON API: the agent lists the targets, a typed number is
    refused naming ``target``, then the agency of the directory is called over the
    trunk, hears the caller, and the chain is read back."""
    app = trunk_app
    agency_id = await agency(app)
    heard_dir = carrier.home / "carrier" / "heard-transfer"
    await carrier.carrier.record_answered_in(heard_dir)
    answered: list[dict[str, Any]] = []

    async def on_event(e: Event) -> None:
        if e.get("UserEvent") == "AgentAnswered" and e.get("Extension") == AGENCY_NUMBER:
            answered.append(dict(e))

    assert carrier.carrier.ami is not None
    carrier.carrier.ami.subscribe(["UserEvent"], on_event, lane="transfer-agency")
    try:
        number, call = await start_call(app, carrier)
        ext = call.agent_extension or ""
        password = "correct horse battery"
        accounts = app.panel.accounts
        admin = await accounts.create_user(
            None, {"username": "root-tr", "display_name": "Root", "role": "admin",
                   "password": password},
        )  # fmt: skip
        async with app.db.session() as db:
            taken = set((await db.scalars(select(User.extension))).all())
        other = next(
            a.extension for a in carrier.settings.agents
            if a.extension != ext and a.extension not in taken
        )  # fmt: skip
        # a supervisor (no desk phone needed) transfers any agent's call; an agent
        # only their own
        for username, role, e in (("boss-tr", "supervisor", None), ("hung-tr", "agent", other)):
            await accounts.create_user(
                Actor.of(admin),
                {"username": username, "display_name": username, "role": role,
                 "password": password, **({"extension": e} if e else {})},
            )  # fmt: skip
        s = carrier.settings
        base = f"http://{s.panel.host}:{s.panel.port}/api/v1"
        async with aiohttp.ClientSession() as http:

            async def headers(user: str) -> dict[str, str]:
                r = await http.post(
                    f"{base}/session", json={"username": user, "password": password}
                )
                assert r.status == 200, await r.text()
                return {"Authorization": f"Bearer {(await r.json())['token']}"}

            boss = await headers("boss-tr")
            r = await http.get(f"{base}/transfer-targets", headers=boss)
            assert r.status == 200, await r.text()
            targets = {t["id"]: t for t in (await r.json())["items"]}
            assert targets[f"agency:{agency_id}"]["number"] == AGENCY_NUMBER
            assert targets["emergency:113"]["number"] == "113"

            async def transfer(who: dict[str, str], target: str, status: int) -> dict[str, Any]:
                r = await http.post(
                    f"{base}/calls/{call.id}/transfers",
                    json={"target": target, "note": "Gọi phường"},
                    headers=who,
                )
                assert r.status == status, await r.text()
                return dict(await r.json())

            refused = await transfer(boss, "emergency:0901234567", 409)
            assert refused["reason"] == "unknown_target" and "target" in refused["fields"]
            other = await transfer(await headers("hung-tr"), f"agency:{agency_id}", 409)
            assert other["reason"] == "not_yours"
            done = await transfer(boss, f"agency:{agency_id}", 201)
            assert done["number"] == AGENCY_NUMBER and done["result"] == "transferred"
            assert done["from_extension"] == ext and done["by"] == "boss-tr"

            desk = await eventually(lambda: _now(answered), timeout=30)
            assert desk[0]["Caller"] == number, "the agency sees the citizen's number"
            await asyncio.sleep(4)
            await carrier.carrier.hangup_all()
            finished = await ended(app, call.id)

            r = await http.get(f"{base}/calls/{call.id}/transfers", headers=boss)
            assert r.status == 200, await r.text()
            (link,) = (await r.json())["items"]
            assert link["target"] == f"agency:{agency_id}" and link["kind"] == "blind"
    finally:
        await carrier.carrier.record_answered_in(None)
    assert finished.end_reason == "transfer_hangup"
    assert_recorded_across(finished, leg1=3, leg2=4)
    (chain,) = await app.transfers.chain(call.id)
    assert_talked_across(finished, chain)
    agency_heard = heard_dir / f"{AGENCY_NUMBER}-heard.wav"
    assert share(agency_heard, CALLER_TONE_HZ, 0.3) > 0.5, "the agency hears the caller"


async def _now(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


async def test_blind_to_113_through_the_trunk_the_desk_answers(
    carrier: Lab, trunk_app: Application
):
    app = trunk_app
    answered: list[dict[str, Any]] = []

    async def on_event(e: Event) -> None:
        if e.get("UserEvent") == "EmergencyAnswered":
            answered.append(dict(e))

    assert carrier.carrier.ami is not None
    carrier.carrier.ami.subscribe(["UserEvent"], on_event, lane="transfer-113")
    number, call = await start_call(app, carrier)
    row = await app.transfers.blind(
        Transferrer(None, "Lan", call.agent_extension), call.id, "emergency:113"
    )
    assert (row.target_kind, row.number, row.result) == ("emergency", "113", "transferred")
    desk = await eventually(
        lambda: _now([e for e in answered if e.get("Caller") == number]), timeout=30
    )
    assert desk[0]["Number"] == "113"
    # the desk talks 6 s, then hangs up: the call ends with it
    done = await ended(app, call.id)
    assert_recorded_across(done, leg1=3, leg2=4)
    (chain,) = await app.transfers.chain(call.id)
    assert_talked_across(done, chain)


async def bridged_with_caller(app: Application, extension: str, uniqueid: str) -> bool:
    events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    chans = [e for e in events if e.get("Event") == "CoreShowChannel"]
    caller = next((c for c in chans if c.get("Uniqueid") == uniqueid), None)
    return bool(caller and caller.get("BridgeId")) and any(
        str(c.get("Channel", "")).startswith(f"PJSIP/{extension}-")
        and c.get("BridgeId") == caller.get("BridgeId")
        for c in chans
    )


async def test_attended_to_a_supervisor_consults_then_completes(
    carrier: Lab, app: Application, caller_ears: None
):
    number, call = await start_call(app, carrier)
    ext = call.agent_extension or ""
    actor = Transferrer(None, "Lan", ext)
    row = await app.transfers.attended(actor, call.id, "phone:1901", note="Xin ý kiến")
    assert (row.kind, row.result) == ("attended", None)
    assert row.detail and row.detail.startswith(f"PJSIP/{ext}-")
    assert (await app.transfers.consulting(ext)).id == row.id  # type: ignore[union-attr]
    await eventually(lambda: talking(app, "1901"), timeout=20)
    assert not await bridged_with_caller(app, ext, call.uniqueid), "the caller holds"
    await asyncio.sleep(2)  # the agent and the supervisor talk

    done = await app.transfers.complete(actor, row.id)
    assert done.result == "transferred"
    await eventually(lambda: bridged_with_caller(app, "1901", call.uniqueid), timeout=10)
    assert not await talking(app, ext), "the agent's phone is free"
    assert await app.transfers.consulting(ext) is None
    await asyncio.sleep(4)  # the caller and the supervisor talk
    await carrier.carrier.hangup_all()
    finished = await ended(app, call.id)

    (link,) = await app.transfers.chain(call.id)  # the AMI event adds no second row
    assert link.id == row.id and link.result == "transferred"
    assert link.answered_at == link.done_at, "the supervisor talks to the caller from then"
    heard = Path(finished.recording_agent or "")
    assert share(heard, AGENT_TONE_HZ, 0.3, 2.5) > 0.5, "the first agent, before"
    assert share(heard, SUPERVISOR_TONE_HZ, -3.5, -0.3) > 0.5, "the supervisor, after"
    assert share(Path(finished.recording_caller or ""), CALLER_TONE_HZ, -3.5, -0.3) > 0.5
    assert_talked_across(finished, link)
    desk_heard = carrier.carrier.heard("1901")[-1]
    assert share(desk_heard, CALLER_TONE_HZ, -3.5, -0.3) > 0.3, "the supervisor hears the caller"
    assert share(caller_heard(carrier, number), SUPERVISOR_TONE_HZ, -3.5, -0.5) > 0.5, (
        "... and the caller the supervisor, to the end"
    )


async def test_attended_cancelled_takes_the_agent_back_to_the_caller(
    carrier: Lab, app: Application
):
    _number, call = await start_call(app, carrier)
    ext = call.agent_extension or ""
    actor = Transferrer(None, "Lan", ext)
    row = await app.transfers.attended(actor, call.id, "phone:1902")
    await eventually(lambda: talking(app, "1902"), timeout=20)
    done = await app.transfers.cancel(actor, row.id)
    assert done.result == "cancelled"
    await eventually(lambda: bridged_with_caller(app, ext, call.uniqueid), timeout=10)
    assert not await talking(app, "1902"), "the supervisor's leg is gone"
    (link,) = await app.transfers.chain(call.id)
    assert link.result == "cancelled"


async def keys_from_phone(lab: Lab, extension: str, digits: str) -> None:
    """The agent's phone (the carrier's channel answering ``extension``) keys ``digits``
    into the call, as RFC 4733 events, as a softphone's keypad would."""
    ami = lab.carrier.ami
    assert ami is not None
    events = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
    (channel,) = [
        e["Channel"] for e in events
        if e.get("Event") == "CoreShowChannel" and e.get("Exten") == extension
        and e.get("Context") == "agent-phones"
    ]  # fmt: skip
    for digit in digits:
        await ami.action({"Action": "PlayDTMF", "Channel": channel, "Digit": digit,
                          "Duration": "200"}, as_list=False)  # fmt: skip
        await asyncio.sleep(0.4)


async def test_the_phone_keys_blind_transfer_to_another_team(carrier: Lab, app: Application):
    """## then 82 (the second team of [[teams]]) on the agent's phone: the caller goes to
    the Party team's queue, a Party agent answers, and the chain notes it from the phone."""
    _number, call = await start_call(app, carrier)
    first = call.agent_extension or ""
    await keys_from_phone(carrier, first, "##82")

    async def second_agent() -> str | None:
        c = await record(app, call.id)
        ext = c.agent_extension
        return ext if ext and ext != first and await talking(app, ext) else None

    second = await eventually(second_agent, timeout=40)
    assert second.startswith("2")
    (link,) = await eventually(lambda: app.transfers.chain(call.id), timeout=10)
    assert (link.kind, link.target_kind, link.target, link.detail) == (
        "blind", "queue", "party", "phone",
    )  # fmt: skip
    assert link.from_extension == first and link.result == "transferred"
    await asyncio.sleep(4)
    await carrier.carrier.hangup_all()
    done = await ended(app, call.id)
    assert_recorded_across(done, leg1=3, leg2=4)
    assert_talked_across(done, (await app.transfers.chain(call.id))[0])
