"""The callbacks page on a real panel (Redis, SQLite and PostgreSQL): the list in order,
"call now" for the next one only, outcomes, cancel, and voice messages with access control."""

from __future__ import annotations

import re
import wave

from accounts.identity import Actor
from callcenter.models import Result, Status, VoiceStatus
from tests.helpers import requested_callback
from tests.panel.conftest import PASSWORD, waiting_call


async def post(panel, path, csrf, **data):
    return await panel.client.post(path, data={"_csrf": csrf, **data}, allow_redirects=False)


async def test_agents_work_the_list_in_order(panel):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    svc = ctx.callbacks
    for uid, number, ago in [("pbx-9.1", "0901000001", 5), ("pbx-9.2", "0901000002", 9)]:
        joined = await waiting_call(ctx, uid, number, ago)
        await requested_callback(svc, uid, number, joined)
    older, newer = await svc.open_list("t1022")
    assert older.number == "0901000002", "first joined, first served"

    csrf = await panel.login("agent1")
    page = await (await panel.client.get("/callbacks")).text()
    assert page.index("0901000002") < page.index("0901000001")
    assert page.count('action="/callbacks/') >= 2
    assert f'action="/callbacks/{older.id}/call"' in page
    assert f'action="/callbacks/{newer.id}/call"' not in page, "call now only on the next one"
    assert "/cancel" not in page, "agents do not cancel"

    r = await post(panel, f"/callbacks/{newer.id}/call", csrf)
    assert r.status == 303 and (await svc.get(newer.id)).assigned_extension is None
    r = await post(panel, f"/callbacks/{older.id}/call", csrf)
    assert r.status == 303
    assert (await svc.get(older.id)).assigned_extension == "1001"
    # without the form's token nothing happens
    r = await panel.client.post(f"/callbacks/{newer.id}/outcome", data={"result": "busy"})
    assert r.status == 403
    r = await post(panel, f"/callbacks/{newer.id}/outcome", csrf, result="cancelled")
    assert (await svc.get(newer.id)).attempts == 0, "agents record tries, not cancellations"
    r = await post(panel, f"/callbacks/{newer.id}/outcome", csrf, result="busy", note="máy bận")
    after = await svc.get(newer.id)
    assert after.attempts == 1 and after.last_result == Result.BUSY and after.note == "máy bận"
    r = await post(panel, f"/callbacks/{newer.id}/cancel", csrf)
    assert r.status == 403

    sup = await panel.new_client()
    try:
        token = re.search(
            r'name="_csrf" value="([^"]+)"', await (await sup.get("/login")).text()
        ).group(1)
        await sup.post("/login", data={"_csrf": token, "username": "sup", "password": PASSWORD})
        page = await (await sup.get("/callbacks")).text()
        assert f'action="/callbacks/{newer.id}/cancel"' in page
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        r = await sup.post(f"/callbacks/{newer.id}/cancel", data={"_csrf": token})
        assert r.status == 200  # followed the redirect back to the list
    finally:
        await sup.close()
    done = await svc.get(newer.id)
    assert done.status == Status.DONE and done.outcome == Result.CANCELLED
    assert done.closed_by == "Sup"


async def test_voice_messages_play_only_for_their_team(panel, tmp_path):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    admin = Actor.of(panel.users["admin"])
    await ctx.accounts.create_user(
        admin,
        {
            "username": "party1",
            "display_name": "Party agent",
            "role": "agent",
            "password": PASSWORD,
            "extension": "2001",
        },
    )
    await waiting_call(ctx, "pbx-8.1", None, 3)
    folder = ctx.settings.recordings_dir / "voicemail" / "2026" / "11" / "25"
    folder.mkdir(parents=True)
    path = folder / "pbx-8.1.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x10\x00" * 16000)
    vm = await ctx.callbacks.voice_message(
        uniqueid="pbx-8.1", path=str(path), seconds=2.0, language="vi"
    )
    outside = tmp_path / "secret.wav"
    outside.write_bytes(path.read_bytes())
    await waiting_call(ctx, "pbx-8.2", "0907000002", 2)
    stray = await ctx.callbacks.voice_message(
        uniqueid="pbx-8.2", path=str(outside), seconds=2.0, language="vi"
    )

    csrf = await panel.login("agent1")
    page = await (await panel.client.get("/callbacks")).text()
    assert f'src="/callbacks/voice/{vm.id}/audio"' in page
    r = await panel.client.get(f"/callbacks/voice/{vm.id}/audio")
    assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
    assert await r.read() == path.read_bytes()
    r = await panel.client.get(f"/callbacks/voice/{stray.id}/audio")
    assert r.status == 404, "only files under the voicemail folder are served"
    r = await panel.client.get("/callbacks/voice/999/audio")
    assert r.status == 404
    # no caller ID: the number must be typed, and a bad one is refused
    await post(panel, f"/callbacks/voice/{vm.id}/callback", csrf, number="12")
    assert (await ctx.callbacks.voice_message_by_id(vm.id)).status == VoiceStatus.NEW
    await post(panel, f"/callbacks/voice/{vm.id}/callback", csrf, number="0907000001")
    msg = await ctx.callbacks.voice_message_by_id(vm.id)
    assert msg.status == VoiceStatus.CALLBACK
    assert (await ctx.callbacks.get(msg.callback_id)).number == "0907000001"
    await post(panel, f"/callbacks/voice/{stray.id}/handled", csrf)
    assert (await ctx.callbacks.voice_message_by_id(stray.id)).status == VoiceStatus.HANDLED

    other = await panel.new_client()
    try:
        token = re.search(
            r'name="_csrf" value="([^"]+)"', await (await other.get("/login")).text()
        ).group(1)
        await other.post(
            "/login", data={"_csrf": token, "username": "party1", "password": PASSWORD}
        )
        r = await other.get(f"/callbacks/voice/{vm.id}/audio")
        assert r.status == 403, "another team's agent may not listen"
        page = await (await other.get("/callbacks")).text()
        assert "0907000001" not in page, "nor see the other team's callbacks"
    finally:
        await other.close()
    officer = await panel.new_client()
    try:
        r = await officer.get(f"/callbacks/voice/{vm.id}/audio", allow_redirects=False)
        assert r.status == 303, "signed out: to the sign-in page"
    finally:
        await officer.close()
