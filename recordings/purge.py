"""Retention: audio older than ``[recordings] keep_audio_days`` is deleted.

The call record always stays, and so do the transcript (unless
``keep_transcripts = false``) and the access audit.  A dry run lists what a
purge would delete and deletes nothing.  Only files under the recordings
directory are ever deleted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callcenter.models import Call
from callcenter.recording_files import mixed_file, side_files
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from recordings.models import Transcript
from recordings.replay import cached_files
from recordings.store import delete_transcript

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeItem:
    call_id: int
    ended_at: datetime
    files: tuple[Path, ...]
    bytes: int
    transcript: bool  # its transcript goes too


@dataclass
class PurgeReport:
    cutoff: datetime | None
    dry_run: bool
    items: list[PurgeItem] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(len(i.files) for i in self.items)

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)


def _existing(base: str, root: Path) -> list[tuple[Path, int]]:
    out = []
    for name in (mixed_file(base), *side_files(base)):
        if not name:
            continue
        p = Path(name)
        try:
            if not p.resolve().is_relative_to(root):
                log.warning("purge: %s is outside %s; left alone", p, root)
                continue
            out.append((p, p.stat().st_size))
        except (FileNotFoundError, OSError):
            continue
    return out


def _remove(files: tuple[Path, ...], root: Path) -> None:
    for p in files:
        p.unlink(missing_ok=True)
    for d in {p.parent for p in files}:
        # empty day, month and year folders go too
        while d != root and d.is_relative_to(root):
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent


class RecordingPurge:
    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock

    async def run(self, *, dry_run: bool = False, batch: int = 500) -> PurgeReport:
        days = self.settings.recordings.keep_audio_days
        if days is None:
            return PurgeReport(None, dry_run)
        cutoff = self.clock.now() - timedelta(days=days)
        report = PurgeReport(cutoff, dry_run)
        drop_transcripts = not self.settings.recordings.keep_transcripts
        root = self.settings.recordings_dir.resolve()
        last_id = 0
        while True:
            async with self.db.session() as s:
                rows = (
                    await s.execute(
                        select(Call.id, Call.ended_at, Call.recording_base)
                        .where(
                            Call.id > last_id,
                            Call.recording_base.is_not(None),
                            Call.ended_at.is_not(None),
                            Call.ended_at < cutoff,
                        )
                        .order_by(Call.id)
                        .limit(batch)
                    )
                ).all()
                with_transcript: set[int] = set()
                if drop_transcripts and rows:
                    with_transcript = set(
                        (
                            await s.execute(
                                select(Transcript.call_id).where(
                                    Transcript.call_id.in_([r[0] for r in rows])
                                )
                            )
                        ).scalars()
                    )
            if not rows:
                break
            last_id = rows[-1][0]
            for call_id, ended_at, base in rows:
                assert base is not None and ended_at is not None  # the query says so
                found = await asyncio.to_thread(_existing, base, root)
                has_t = call_id in with_transcript
                if not found and not has_t:
                    continue
                item = PurgeItem(
                    call_id, ended_at, tuple(p for p, _ in found), sum(n for _, n in found), has_t
                )
                report.items.append(item)
                if dry_run:
                    continue
                await asyncio.to_thread(_remove, item.files, root)
                # the panel's browser copy and waveform of the call go with the audio
                for copy in cached_files(self.settings, call_id):
                    await asyncio.to_thread(copy.unlink, missing_ok=True)
                if has_t:
                    await delete_transcript(self.db, call_id)
        if not dry_run and report.items:
            log.info(
                "purge: deleted %d files (%.1f MB) of %d calls ended before %s",
                report.files,
                report.bytes / 1e6,
                len(report.items),
                cutoff.isoformat(),
            )
        return report
