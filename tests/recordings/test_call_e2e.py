"""End to end: a real call through the real Asterisk ends with its transcript stored and found.

The carrier's caller speaks (espeak-ng, Korean: the packaged test model's
language) instead of playing a tone; the application's own worker process
transcribes the recording once the call has ended.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from callcenter.models import Call, Outcome
from core.clock import Clock
from hotline.app import Application
from hotline.system import migrate
from recordings.models import JobStatus
from recordings.search import TranscriptSearch
from tests.lab import Lab, eventually
from tests.recordings.conftest import MODEL, speech
from tests.recordings.test_transcribe import CITIZEN_SAYS

pytestmark = pytest.mark.asterisk


async def test_real_call_is_transcribed_and_found_by_search(
    carrier: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    lab = carrier
    # A database of its own (the worker process reads it from the environment):
    # the session's lab database holds the other tests' calls, whose recordings
    # the backlog scan would rightly transcribe first.  Jobs other tests' runs
    # left in Redis belong to their databases: dropped.
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", url)
    redis = aioredis.from_url(lab.settings.panel.redis_url)
    prefix = lab.settings.panel.redis_prefix
    await redis.delete(*(f"{prefix}:transcribe:{k}" for k in ("pending", "leases", "owners")))
    await redis.aclose()
    # the citizen's words start once an agent has answered (the IVR and the
    # queue take a few seconds); Asterisk records from the answer on
    words = speech(tmp_path / "citizen.wav", CITIZEN_SAYS, before=4.0, after=1.0)
    sound = lab.carrier.add_sound("citizen-ko", words)
    settings = lab.settings.model_copy(
        update={
            "database_url": url,
            "recordings": lab.settings.recordings.model_copy(
                update={"vosk_model": MODEL, "workers": 1}
            ),
        }
    )
    await asyncio.to_thread(migrate, settings)
    number = "09" + "".join(random.choices("0123456789", k=8))
    async with Application(settings, clock=Clock(), scheduler_interval=2) as app:
        await app.ami.wait_logged_in(30)
        await asyncio.wait_for(app.scheduler.reconciled.wait(), 30)
        assert app.transcription.workers is not None
        await lab.carrier.call(
            "1022", caller_id=f"<{number}>", digits="1", hold=13, caller_sound=sound
        )

        async def ended() -> Call | None:
            async with app.db.session() as s:
                c = await s.scalar(select(Call).where(Call.caller_number == number))
            return c if c is not None and c.ended_at is not None else None

        call = await eventually(ended, timeout=60)
        assert call.outcome == Outcome.ANSWERED and call.recording_caller
        search = TranscriptSearch(app.db)
        transcript = await eventually(lambda: search.for_call(call.id), timeout=120, every=0.5)
        job = await search.job(call.id)
        assert job is not None and job.status == JobStatus.DONE and job.attempts == 1

        citizen = [s for s in transcript.segments if s["speaker"] == "citizen"]
        assert citizen, transcript.text
        assert all(w["end"] >= w["start"] >= 0 for s in citizen for w in s["words"])
        # the words start after the 4 s of silence the caller began with, less
        # the time before the agent answered
        assert citizen[0]["start"] > 0.3
        word = citizen[0]["words"][0]["w"]
        hits = await search.search(word)
        assert any(h.call_id == call.id and h.speaker == "citizen" for h in hits)
