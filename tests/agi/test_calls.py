"""Real calls through the real Asterisk: IVR, queues, agents, recordings, call records."""

from __future__ import annotations

import asyncio
import random
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from callcenter.models import Call, Outcome
from callcenter.recording_files import base_for, mixed_file
from callcenter.shifts import on_duty_queue
from hotline.app import Application
from hotline.carrier import AGENT_TONE_HZ, CALLER_TONE_HZ, Carrier
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk


def new_number() -> str:
    return "09" + "".join(random.choices("0123456789", k=8))


async def record_of(app: Application, number: str) -> Call | None:
    async with app.db.session() as s:
        return await s.scalar(select(Call).where(Call.caller_number == number))


async def ended_record(app: Application, number: str, timeout: float = 60) -> Call:
    async def probe() -> Call | None:
        c = await record_of(app, number)
        return c if c is not None and c.ended_at is not None else None

    return await eventually(probe, timeout)


async def queued_record(app: Application, number: str, timeout: float = 30) -> Call:
    """The caller's record once they wait in a queue (their keys there now count)."""

    async def probe() -> Call | None:
        c = await record_of(app, number)
        return c if c is not None and c.queued_at is not None else None

    return await eventually(probe, timeout)


async def keys_in_queue(
    carrier: Carrier, app: Application, number: str, keys: str, *, hold: int, **call: Any
) -> Call:
    """A call from ``number``: 1 in the menu, then ``keys`` once the record shows it
    waiting in the queue (the record as it was then)."""
    caller = await carrier.call(
        "1022",
        caller_id=f"<{number}>",
        digits="1",
        cue=True,
        wait2=1,
        digits2=keys,
        hold=hold,
        **call,
    )
    queued = await queued_record(app, number)
    await carrier.cue(caller)
    return queued


async def settled_record(
    app: Application, number: str, outcome: Outcome, timeout: float = 60
) -> Call:
    """The caller's ended record once it reads ``outcome``.

    A caller who hangs up while leaving a message is first closed as having
    left the queue; the message, kept a moment later, then sets the outcome.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        c = await record_of(app, number)
        if c is not None and c.ended_at is not None and c.outcome == outcome:
            return c
        if loop.time() > deadline:
            seen = None if c is None else (c.outcome, c.end_reason, c.ivr_path, c.ended_at)
            raise AssertionError(f"{number}: no {outcome} record within {timeout}s: {seen}")
        await asyncio.sleep(0.25)


def dominant_hz(path: str | Path) -> tuple[float, float]:
    """(dominant frequency, RMS) of a 16-bit mono wav."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    assert data.size > rate, f"{path}: under a second of audio"
    spectrum = np.abs(np.fft.rfft(data))
    freqs = np.fft.rfftfreq(data.size, 1 / rate)
    return float(freqs[int(np.argmax(spectrum[1:])) + 1]), float(np.sqrt(np.mean(data**2)))


def agent_extensions(lab: Lab, team: str, shift: str) -> set[str]:
    return {a.extension for a in lab.settings.agents if a.team == team and a.shift == shift}


async def test_caller_reaches_agent_and_both_sides_are_recorded(carrier: Lab, app: Application):
    number = new_number()
    started = datetime.now(UTC)
    await carrier.carrier.call("1022", caller_id=f'"Nguyen Van A" <{number}>', digits="1", hold=10)
    call = await ended_record(app, number)

    queue, shift = on_duty_queue(carrier.settings, "t1022", started)
    assert call.outcome == Outcome.ANSWERED
    assert call.route_source == "agi"
    assert call.hotline_number == "1022" and call.team_id == "t1022"
    assert call.queue == queue and call.shift_id == shift.id
    assert call.agent_extension in agent_extensions(carrier, "t1022", shift.id)
    assert call.ivr_path == "1:agent" and call.ivr_choice == "agent"
    assert call.caller_name == "Nguyen Van A" and call.language == "vi"
    assert call.uniqueid.startswith("pbx-") and call.linkedid == call.uniqueid
    assert call.started_at <= call.queued_at <= call.answered_at <= call.ended_at
    assert call.talk_seconds is not None and call.talk_seconds >= 3
    assert call.end_reason == "caller_hangup"
    # date-partitioned in local time
    s = carrier.settings
    assert call.recording_base == str(
        base_for(s.recordings_dir, s.tz, call.started_at, call.uniqueid)
    )
    assert Path(mixed_file(call.recording_base)).stat().st_size > 50_000
    await asyncio.sleep(1)  # MixMonitor closes its files as the bridge ends
    hz_in, rms_in = dominant_hz(call.recording_caller)
    hz_out, rms_out = dominant_hz(call.recording_agent)
    assert abs(hz_in - CALLER_TONE_HZ) < 15, "caller's side holds the caller's voice"
    assert abs(hz_out - AGENT_TONE_HZ) < 15, "agent's side holds the agent's voice"
    assert rms_in > 1000 and rms_out > 1000, "both sides are far from silent"


async def test_0888_reaches_the_party_team(carrier: Lab, app: Application):
    number = new_number()
    await carrier.carrier.call("0888247247", caller_id=f"<{number}>", digits="1", hold=3)
    call = await ended_record(app, number)
    assert call.outcome == Outcome.ANSWERED
    assert call.hotline_number == "0888247247" and call.team_id == "party"
    assert call.queue.startswith("party-")
    assert call.agent_extension in {
        a.extension for a in carrier.settings.agents if a.team == "party"
    }


async def test_invalid_keys_and_silence_retry_then_default(carrier: Lab, app: Application):
    number = new_number()
    # "5" is no option; then silence twice: three failures, then the default (an agent).
    await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="5", hold=25)
    call = await ended_record(app, number, timeout=90)
    assert call.ivr_path == "5:invalid > silence > silence > default:agent"
    assert call.ivr_choice == "default:agent"
    assert call.outcome == Outcome.ANSWERED


async def test_language_switch_and_emergency_then_agent(carrier: Lab, app: Application):
    number = new_number()
    await carrier.carrier.call(
        "1022", caller_id=f"<{number}>", digits="9", digits2="01", wait2=2.5, hold=3
    )
    call = await ended_record(app, number, timeout=60)
    assert call.ivr_path == "9:language > 0:emergency > 1:agent"
    assert call.language == "en"
    assert call.outcome == Outcome.ANSWERED


async def test_hangup_in_the_ivr_closes_the_record(carrier: Lab, app: Application):
    number = new_number()
    await carrier.carrier.call("1022", caller_id=f"<{number}>", wait=0.5, hold=0)
    call = await ended_record(app, number)
    assert call.outcome == Outcome.HANGUP_IVR
    assert call.queue is None and call.answered_at is None
    assert call.ended_at is not None


async def test_odd_caller_ids_and_dtmf_flood_all_reach_an_agent(carrier: Lab, app: Application):
    long_number = "0" + "9" * 59
    # a key during the greeting cuts the recorded-call notice short: it is played in
    # full before the queue (about 9 s), so the callers stay on long enough for that
    HOLD = 15
    tag = new_number()
    calls = {
        "letters": await carrier.carrier.call(
            "1022", caller_id=f'"{tag}" <abc-DEF>', digits="1", hold=HOLD
        ),
        "long": await carrier.carrier.call(
            "1022", caller_id=f'"{tag}" <{long_number}>', digits="1", hold=HOLD
        ),
        "flood": await carrier.carrier.call(
            "1022",
            caller_id=f'"{tag}" <{tag}>',
            digits="#*#*#*4567#*8#*#*#*#*#*#*#*#*#*",
            dtmf_gap_ms=80,
            hold=HOLD,
        ),
    }
    assert len(calls) == 3

    async def by_name() -> list[Call] | None:
        async with app.db.session() as s:
            rows = (await s.scalars(select(Call).where(Call.caller_name == tag))).all()
        return rows if len(rows) == 3 and all(c.ended_at for c in rows) else None

    rows = await eventually(by_name, timeout=120)
    # Asterisk passes the letters on (it drops the "-"); the record keeps what came.
    letters = next(c for c in rows if c.caller_id_raw and c.caller_id_raw.startswith("abc"))
    long_ = next(c for c in rows if c.caller_id_raw == long_number)
    flood = next(c for c in rows if c.caller_id_raw == tag)
    assert letters.caller_number is None and long_.caller_number is None
    assert flood.caller_number == tag
    for c in (letters, long_, flood):
        assert c.outcome == Outcome.ANSWERED, (c.caller_id_raw, c.ivr_path, c.outcome)
    assert flood.ivr_choice == "default:agent"
    assert flood.ivr_path.startswith("#:invalid > *:invalid")


async def test_no_caller_id(carrier: Lab, app: Application):
    since = datetime.now(UTC)
    await carrier.carrier.call("1022", caller_id="", digits="1", hold=3)

    async def probe() -> Call | None:
        async with app.db.session() as s:
            return await s.scalar(
                select(Call).where(
                    Call.started_at >= since,
                    Call.caller_number.is_(None),
                    Call.ended_at.is_not(None),
                    Call.caller_name.is_(None),
                )
            )

    call = await eventually(probe, timeout=60)
    assert call.outcome == Outcome.ANSWERED
