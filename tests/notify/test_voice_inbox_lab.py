"""A voice message left in the overflow by a real call (the carrier's caller speaks,
espeak-ng, Korean: the packaged test model's language) joins the desks' inbox as an
item of channel ``voice``, with its audio on the panel and its Vosk transcript once
the application's worker process has made it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import tomli_w
from sqlalchemy import select

from accounts.identity import Actor
from callcenter.models import Outcome, VoiceMessage
from core.clock import Clock
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from hotline.system import migrate
from inbox.models import Message, State
from tests.agi.test_calls import keys_in_queue, new_number, settled_record
from tests.callcenter.test_callbacks import overflow_config
from tests.callcenter.test_no_agent import set_paused
from tests.lab import Lab, eventually
from tests.recordings.conftest import MODEL, speech
from tests.recordings.test_transcribe import CITIZEN_SAYS

pytestmark = pytest.mark.asterisk


async def test_a_voice_message_joins_the_inbox_with_its_transcript(
    carrier: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = carrier
    # a database of its own: the worker transcribes this call, not the lab's backlog
    url = f"sqlite:///{tmp_path / 'voice.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", url)
    redis = aioredis.from_url(lab.settings.panel.redis_url)
    prefix = lab.settings.panel.redis_prefix
    await redis.delete(*(f"{prefix}:transcribe:{k}" for k in ("pending", "leases", "owners")))
    await redis.aclose()
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(overflow_config(original)))
    words = speech(tmp_path / "message.wav", CITIZEN_SAYS, before=1.0, after=1.0)
    sound = lab.carrier.add_sound("voice-message-ko", words)
    speaker = new_number()
    try:
        base = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, base)
        await system.reload(base, lab.pbx)
        settings = base.model_copy(
            update={
                "database_url": url,
                "recordings": base.recordings.model_copy(
                    update={"vosk_model": MODEL, "workers": 1}
                ),
            }
        )
        await asyncio.to_thread(migrate, settings)
        async with Application(settings, clock=Clock(), scheduler_interval=2) as app:
            await app.ami.wait_logged_in(30)
            await asyncio.wait_for(app.scheduler.reconciled.wait(), 30)
            await set_paused(app, "t1022", True)
            try:
                # 1 in the menu, then 2 once in the queue: the message, spoken, then hang up
                await keys_in_queue(lab.carrier, app, speaker, "2", hold=14, caller_sound=sound)
                call = await settled_record(app, speaker, Outcome.VOICEMAIL)
            finally:
                await set_paused(app, "t1022", False)
            assert call.end_reason == "voice_message"
            inbox = app.panel.inbox
            assert inbox is not None

            async def item() -> Message | None:
                rows = await inbox.desk(None)
                found = [m for m in rows if m.channel == "voice" and m.citizen == speaker]
                return found[0] if found else None

            msg = await eventually(item, timeout=30)
            assert (msg.direction, msg.state, msg.team) == ("in", State.NEW, "t1022")
            vm = await inbox.voice_of(msg)
            assert vm is not None and vm.call_id == call.id and Path(vm.path).is_file()

            async def transcript() -> str | None:
                return (await inbox.transcripts([msg])).get(msg.id)

            said = await eventually(transcript, timeout=120)
            assert said.strip(), "the transcript has words"

            # on the desk's page: the item, its audio (the callbacks page's access
            # check) and its transcript; an agent turns it into a ticket
            user = await app.panel.accounts.create_user(
                None,
                {
                    "username": f"voice{speaker[-6:]}",
                    "display_name": "Bàn tin nhắn",
                    "role": "supervisor",
                    "password": "correct horse battery",
                },
            )
            actor = Actor.of(user)
            await inbox.claim(actor, msg.id)
            msg, ticket = await inbox.to_ticket(
                actor, msg.id, {"domain": "state", "topic": "flooding", "level": 2}
            )
            assert ticket.channel == "phone" and ticket.citizen_phone == speaker
            assert ticket.call_id == call.id and said in ticket.description
            async with app.db.session() as s:
                row = await s.scalar(select(VoiceMessage).where(VoiceMessage.id == vm.id))
            assert row is not None and row.status == "handled"
            # brought in once: a second sync finds nothing more
            assert await inbox.sync_voice() == 0
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)
