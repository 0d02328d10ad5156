"""Retention: old audio goes, the call, its transcript and the audit stay; a dry run lists."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from callcenter.models import Call
from core.clock import Clock, FakeClock
from core.db import Database
from recordings.purge import RecordingPurge
from recordings.replay import cached_files
from recordings.search import TranscriptSearch
from recordings.store import save_transcript
from tests.recordings.conftest import T0, add_call, rec_settings, recorded_call_files

SEG = [{"speaker": "citizen", "start": 0.0, "end": 1.0, "text": "ngập nước", "words": []}]


def write_sides(base: Path) -> list[Path]:
    files = [Path(f"{base}{suffix}.wav") for suffix in ("", "-in", "-out")]
    for f in files:
        f.write_bytes(b"RIFF" + b"\0" * 1000)
    return files


async def test_purge_dry_run_then_real(db: Database, tmp_path: Path, database_url: str):
    settings = rec_settings(tmp_path, database_url, keep_audio_days=30)
    old_base = recorded_call_files(settings, "pbx-old.1")
    new_base = recorded_call_files(settings, "pbx-new.1")
    old_files, new_files = write_sides(old_base), write_sides(new_base)
    outside = tmp_path / "elsewhere" / "pbx-out.1"
    outside.parent.mkdir()
    outside_files = write_sides(outside)
    old = await add_call(db, "pbx-old.1", old_base, ended=T0)
    new = await add_call(db, "pbx-new.1", new_base, ended=T0 + timedelta(days=25))
    await add_call(db, "pbx-out.1", outside, ended=T0)
    for c in (old, new):
        await save_transcript(db, c, SEG, model="m", audio_seconds=1.0, now=T0)
    clock = FakeClock(T0 + timedelta(days=31))
    purge = RecordingPurge(settings, db, clock)
    # the panel's browser copies and waveforms of both calls
    copies = {c: cached_files(settings, c) for c in (old, new)}
    for path in copies[old] + copies[new]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")

    dry = await purge.run(dry_run=True)
    assert [(i.call_id, set(i.files), i.transcript) for i in dry.items] == [
        (old, set(old_files), False)
    ]
    assert dry.bytes == 3 * 1004
    assert all(f.exists() for f in old_files + new_files + outside_files)

    done = await purge.run()
    assert [i.call_id for i in done.items] == [old]
    assert not any(f.exists() for f in old_files)
    assert not old_base.parent.exists() or any(old_base.parent.iterdir())
    assert all(f.exists() for f in new_files + outside_files)  # never outside the folder
    assert not any(p.exists() for p in copies[old])  # its copy and waveform went too
    assert all(p.exists() for p in copies[new])
    async with db.session() as s:
        assert (await s.scalar(select(Call.recording_base).where(Call.id == old))) == str(old_base)
    search = TranscriptSearch(db)
    assert await search.for_call(old) is not None  # the transcript stays
    assert (await purge.run()).items == []  # nothing left to do


async def test_purge_can_drop_transcripts_and_the_cli_dry_run_lists(
    db: Database, tmp_path: Path, database_url: str
):
    settings = rec_settings(tmp_path, database_url, keep_audio_days=1, keep_transcripts=False)
    base = recorded_call_files(settings, "pbx-t.1")
    files = write_sides(base)
    ended = Clock().now() - timedelta(days=3)
    call = await add_call(db, "pbx-t.1", base, ended=ended)
    await save_transcript(db, call, SEG, model="m", audio_seconds=1.0, now=T0)

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotline.cli",
        "--config",
        str(tmp_path / "config" / "hotline.toml"),
        "recordings",
        "purge",
        "--dry-run",
        env={**os.environ, "HOTLINE_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
    )
    out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    assert proc.returncode == 0
    assert f"would delete call {call} ({ended:%Y-%m-%d}): {files[0]}" in out
    assert f"would delete call {call}: transcript" in out
    assert "would delete 3 files" in out
    assert all(f.exists() for f in files)

    report = await RecordingPurge(settings, db, Clock()).run()
    assert report.items[0].transcript
    assert not any(f.exists() for f in files)
    search = TranscriptSearch(db)
    assert await search.for_call(call) is None
    assert await search.search("ngập nước") == []
