"""Voice messages on the SMS desk's pages (real panel, Redis, SQLite and PostgreSQL): the
item with its audio (through the callbacks page's access check), its transcript, the
caller's earlier tickets and the actions; and the SMS-desk permission of a team."""
# ruff: noqa: F811

from __future__ import annotations

import json
import wave
from datetime import datetime

from accounts.identity import SYSTEM, Actor
from callcenter.models import VoiceStatus
from core.settings import Team
from inbox.models import State
from panel.views.inbox import desk_teams
from recordings.models import Transcript
from tests.panel.conftest import panel, waiting_call  # noqa: F401  (the fixture)


async def _voice(ctx, uniqueid: str, number: str | None):  # type: ignore[no-untyped-def]
    await waiting_call(ctx, uniqueid, number, 3)
    folder = ctx.settings.recordings_dir / "voicemail" / "2026" / "12" / "07"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uniqueid}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x10\x00" * 16000)
    return await ctx.callbacks.voice_message(
        uniqueid=uniqueid, path=str(path), seconds=2.0, language="vi"
    )


async def test_a_voice_message_is_a_desk_item_with_audio_transcript_and_actions(panel) -> None:
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    await ctx.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "citizen_phone": "0907000020",
            "domain": "state",
            "topic": "flooding",
            "level": 1,
            "description": "Hỏi thủ tục cấp phép đào đường",
            "guidance": "Đã hướng dẫn",
        },
    )
    vm = await _voice(ctx, "pbx-vm.1", "0907000020")
    # the panel process has no hook from the overflow: the sync brings it in, once
    assert await ctx.inbox.sync_voice() == 1
    assert await ctx.inbox.sync_voice() == 0
    [item] = [m for m in await ctx.inbox.desk(None) if m.voice_message_id == vm.id]
    assert (item.channel, item.citizen, item.team, item.state) == (
        "voice",
        "0907000020",
        "t1022",
        State.NEW,
    )
    csrf = await panel.login("agent1")
    page = await (await panel.client.get(f"/messages/{item.id}")).text()
    assert f'src="/callbacks/voice/{vm.id}/audio"' in page
    assert "Hỏi thủ tục cấp phép" in page  # the caller's earlier ticket
    assert 'id="voice-transcript"' in page and "đường bị ngập nặng" not in page
    r = await panel.client.get(f"/callbacks/voice/{vm.id}/audio")
    assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
    # the transcript, once the worker stored it, on the item and in the list
    async with ctx.db.session() as s:
        s.add(
            Transcript(
                call_id=vm.call_id,
                text="citizen: đường bị ngập nặng",
                segments_json=json.dumps([]),
                model="test",
                audio_seconds=2.0,
                created_at=datetime.now(ctx.clock.now().tzinfo),
            )
        )
    page = await (await panel.client.get(f"/messages/{item.id}")).text()
    assert "đường bị ngập nặng" in page.split('id="voice-transcript"')[1][:300]
    desk = await (await panel.client.get("/messages")).text()
    assert "đường bị ngập nặng" in desk and "msg-voice" in desk
    # a callback to the caller: on the callback list, the item still open
    r = await panel.client.post(
        f"/messages/{item.id}",
        data={"_csrf": csrf, "action": "callback"},
        allow_redirects=False,
    )
    assert r.status == 303
    vm_after = await ctx.callbacks.voice_message_by_id(vm.id)
    assert vm_after.status == VoiceStatus.CALLBACK and vm_after.callback_id is not None
    # turned into a ticket: the phone channel, the caller's number, the transcript
    agent = Actor.of(panel.users["agent1"])
    msg, ticket = await ctx.inbox.to_ticket(
        agent, item.id, {"domain": "state", "topic": "flooding", "level": 2}
    )
    assert msg.state == State.TICKET and ticket.channel == "phone"
    assert ticket.citizen_phone == "0907000020" and ticket.call_id == vm.call_id
    assert ticket.description == "đường bị ngập nặng"


async def test_a_voice_message_without_a_number_cannot_be_answered_by_sms(panel) -> None:
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    vm = await _voice(ctx, "pbx-vm.2", None)
    await ctx.inbox.voice_arrived(vm.id)
    [item] = [m for m in await ctx.inbox.desk(None) if m.voice_message_id == vm.id]
    assert item.citizen == ""
    await panel.login("agent1")
    page = await (await panel.client.get(f"/messages/{item.id}")).text()
    assert 'id="form-reply"' not in page and 'id="form-callback"' in page
    # no content: the callbacks page no longer lists it as waiting
    await ctx.inbox.no_content(Actor.of(panel.users["agent1"]), item.id)
    assert (await ctx.callbacks.voice_message_by_id(vm.id)).status == VoiceStatus.HANDLED


async def test_a_team_that_names_its_sms_desk_agents_keeps_the_others_out(panel) -> None:
    settings = panel.ctx.settings
    agent1, agent2 = Actor.of(panel.users["agent1"]), Actor.of(panel.users["agent2"])
    team = settings.agents[0].team
    assert desk_teams(settings, agent1) == [team]  # no list: every agent of the team
    named = settings.model_copy(
        update={
            "teams": [
                Team(id=t.id, name=t.name, sms_desk=["1002"] if t.id == team else [])
                for t in settings.teams
            ]
        }
    )
    assert desk_teams(named, agent1) == []
    assert desk_teams(named, agent2) == [team]
    sup = Actor.of(panel.users["sup"])
    assert set(desk_teams(named, sup)) == {t.id for t in settings.teams}
    panel.ctx.settings = named
    try:
        await panel.login("agent1")
        r = await panel.client.get("/messages")
        assert r.status == 403
    finally:
        panel.ctx.settings = settings
