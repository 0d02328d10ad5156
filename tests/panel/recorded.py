"""Recorded calls for the replay pages: real WAV files spoken by espeak-ng, real rows.

Calls are inserted as the call path leaves them (8 kHz mono WAV per side under
the recordings directory, the call row pointing at them); transcripts are
stored with the recordings package's own writer, so the full-text search
finds them.  The panel itself is conftest.py's (real Redis, SQLite and
PostgreSQL, one account per role), which also makes ``voices`` a fixture of
this folder.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydub import AudioSegment

from callcenter.models import Call, Outcome
from callcenter.recording_files import base_for, side_files
from panel.context import PanelContext
from recordings.store import save_transcript

RATE = 8000  # what Asterisk's MixMonitor writes


def load(path: Path) -> AudioSegment:
    with path.open("rb") as f:
        return AudioSegment.from_file(f, format="wav")


def save(audio: AudioSegment, path: Path | str) -> None:
    audio.export(str(path), format="wav").close()


def speak(text: str, target: Path, *, voice: str = "vi") -> Path:
    """``text`` spoken by espeak-ng into an 8 kHz mono 16-bit WAV."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (apt install espeak-ng)")
    raw = target.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    audio = load(raw).set_frame_rate(RATE).set_channels(1).set_sample_width(2)
    save(audio, target)
    raw.unlink()
    return target


@dataclass
class Voices:
    """One call's two sides, spoken once per test session and copied where needed."""

    citizen: Path  # starts with 2 s of silence: the agent greets first
    agent: Path
    seconds: float


@pytest.fixture(scope="session")
def voices(tmp_path_factory: pytest.TempPathFactory) -> Voices:
    d = tmp_path_factory.mktemp("voices")
    agent = speak("Tổng đài một không hai hai xin nghe", d / "agent-raw.wav")
    citizen = speak("Nhà tôi ở quận một bị ngập nước từ sáng", d / "citizen-raw.wav")
    a = load(agent)
    c = AudioSegment.silent(duration=2000, frame_rate=RATE) + load(citizen)
    length = max(len(a), len(c)) + 500
    a = a + AudioSegment.silent(duration=length - len(a), frame_rate=RATE)
    c = c + AudioSegment.silent(duration=length - len(c), frame_rate=RATE)
    save(a.set_channels(1), d / "agent.wav")
    save(c.set_channels(1), d / "citizen.wav")
    return Voices(d / "citizen.wav", d / "agent.wav", length / 1000)


def segments(voices: Voices, citizen_text: str = "Nhà tôi ở quận một bị ngập nước từ sáng"):  # type: ignore[no-untyped-def]
    """A transcript as the pipeline writes it, words spread over each utterance."""

    def seg(speaker: str, text: str, start: float, end: float) -> dict[str, Any]:
        ws = text.split()
        step = (end - start) / len(ws)
        return {
            "speaker": speaker,
            "start": start,
            "end": end,
            "text": text,
            "words": [
                {
                    "w": w,
                    "start": round(start + i * step, 3),
                    "end": round(start + (i + 1) * step - 0.02, 3),
                    "conf": 0.9,
                }
                for i, w in enumerate(ws)
            ],
        }

    return [
        seg("agent", "Tổng đài một không hai hai xin nghe", 0.1, 1.9),
        seg("citizen", citizen_text, 2.1, voices.seconds - 0.6),
    ]


async def add_call(
    ctx: PanelContext,
    voices: Voices | None,
    *,
    started: datetime,
    hotline: str = "1022",
    shift: str = "morning",
    agent: str | None = "1001",
    outcome: str = Outcome.ANSWERED,
    talk: int | None = 75,
    recorded: bool = True,
    transcript: list[dict[str, Any]] | None = None,
    mixed_only: bool = False,
) -> Call:
    """A finished call as the call path leaves it, with its audio files when ``voices``."""
    uniqueid = f"pbx-{uuid.uuid4().hex[:10]}.1"
    base = str(base_for(ctx.settings.recordings_dir, ctx.settings.tz, started, uniqueid))
    caller, agent_file = side_files(base) if recorded else (None, None)
    if voices is not None and recorded:
        Path(base).parent.mkdir(parents=True, exist_ok=True)
        if mixed_only:
            save(load(voices.citizen).overlay(load(voices.agent)), f"{base}.wav")
            caller = agent_file = None
        else:
            shutil.copy(voices.citizen, caller)  # type: ignore[arg-type]
            shutil.copy(voices.agent, agent_file)  # type: ignore[arg-type]
    call = Call(
        uniqueid=uniqueid,
        linkedid=uniqueid,
        hotline_number=hotline,
        caller_number="0903123456",
        shift_id=shift,
        team_id="t1022",
        agent_extension=agent,
        agent_name={"1001": "Nguyễn Thị Lan", "1002": "Trần Văn Hùng"}.get(agent or "", None),
        started_at=started,
        answered_at=started if talk else None,
        ended_at=started,
        talk_seconds=talk,
        hold_seconds=5,
        outcome=outcome,
        recording_base=base if recorded else None,
        recording_caller=caller,
        recording_agent=agent_file,
    )
    async with ctx.db.session() as s:
        s.add(call)
    if transcript is not None:
        await save_transcript(
            ctx.db, call.id, transcript, model="test-model", audio_seconds=5.0, now=started
        )
    return call
