"""Replay of recorded calls: who may listen, which calls, and audio a browser plays.

Asterisk writes 8 kHz WAV files (``<base>-in.wav`` the caller, ``<base>-out.wav``
the agent, ``<base>.wav`` both mixed, see :mod:`callcenter.recording_files`).
A browser gets one MP3 of both sides mixed, converted once with pydub
(ffmpeg) in a worker thread and cached under ``<state_dir>/replay-cache``.
The waveform is drawn from peaks computed here the same way (``<id>.peaks.json``
beside it), so opening the replay page fetches no audio: only pressing play does.
Files are found from the call record only, never from a path a client sent,
and only inside the recordings directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time as time_module
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select

from accounts.identity import Actor
from accounts.models import Role
from callcenter.models import Call
from callcenter.recording_files import mixed_file, side_files
from core.db import Database
from core.settings import Settings
from recordings.models import Transcript, TranscriptionJob
from tickets.models import Ticket
from tickets.queries import visible_to

log = logging.getLogger(__name__)

#: what browsers get: MP3 plays everywhere (Chromium, Firefox, Safari) and
#: seeks by byte range; 16 kHz keeps it MPEG-2 (8 kHz MP3 is not played by all).
BROWSER_FORMAT = "mp3"
BROWSER_MIME = "audio/mpeg"
_BITRATE = "32k"
_RATE = 16000
#: a browser copy not served for this many days is removed (it is made again on demand)
CACHE_DAYS = 7
PRUNE_EVERY_SECONDS = 3600
#: waveform peaks: this many per second of audio, at most PEAKS_MAX for a call
PEAKS_PER_SECOND = 50
PEAKS_MAX = 4000


# -- who may listen ---------------------------------------------------------


def can_replay(actor: Actor | None, call: Call, settings: Settings) -> bool:
    """Whether ``actor`` may list, play or download ``call``'s recording.

    Admins and supervisors always; an agent only a call they took, and only
    when ``[recordings] agents_replay_own`` is on; nobody else.
    """
    if actor is None:
        return False
    if actor.role in (Role.ADMIN, Role.SUPERVISOR):
        return True
    return (
        actor.role == Role.AGENT
        and settings.recordings.agents_replay_own
        and actor.extension is not None
        and call.agent_extension == actor.extension
    )


def can_read_transcript(actor: Actor | None, call: Call, settings: Settings) -> bool:
    """Whether ``actor`` may read ``call``'s transcript (on the call's ticket page too).

    Admins and supervisors, the agent who took the call, and whoever may replay it.
    """
    if actor is None:
        return False
    if can_replay(actor, call, settings):
        return True
    return (
        actor.role == Role.AGENT
        and actor.extension is not None
        and call.agent_extension == actor.extension
    )


def may_list(actor: Actor | None, settings: Settings) -> bool:
    """Whether ``actor`` may open the recordings list at all."""
    if actor is None:
        return False
    if actor.role in (Role.ADMIN, Role.SUPERVISOR):
        return True
    return actor.role == Role.AGENT and settings.recordings.agents_replay_own


# -- the list ---------------------------------------------------------------


@dataclass
class CallFilter:
    """What the recordings list is narrowed to; None means any."""

    date_from: date | None = None  # local dates, both ends included
    date_to: date | None = None
    hotline: str | None = None
    shift: str | None = None
    agent: str | None = None  # extension
    outcome: str | None = None
    min_seconds: int | None = None  # talk time
    max_seconds: int | None = None
    has_ticket: bool | None = None
    call_ids: list[int] | None = None  # e.g. the calls whose transcript has the words
    only_extension: str | None = None  # forced for an agent: their own calls
    # who lists: a call of a ticket they may not see (a restricted one) is left out
    viewer: Actor | None = None


@dataclass
class CallRow:
    call: Call
    tickets: list[str] = field(default_factory=list)
    transcript: bool = False
    job_status: str | None = None


def cache_dir(settings: Settings) -> Path:
    """Where the browser copies (MP3, both sides mixed) of calls are kept."""
    return settings.state_dir / "replay-cache"


def cached_files(settings: Settings, call_id: int) -> list[Path]:
    """What the replay keeps of a call's audio: its browser copy and its waveform."""
    d = cache_dir(settings)
    return [d / f"{call_id}.{BROWSER_FORMAT}", d / f"{call_id}.peaks.json"]


class ReplayService:
    """Lists recorded calls and hands out browser audio for them."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.cache_dir = cache_dir(settings)
        # one conversion per call at a time; a lock lives while someone waits on it
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._next_prune = 0.0

    def _conditions(self, f: CallFilter) -> list[ColumnElement[bool]]:
        tz = self.settings.tz
        # recorded AND answered: the audio is written once an agent answers
        # (MixMonitor starts with the queue's connect); a call that ended in
        # the menu or the queue has a file name but no audio
        conds: list[ColumnElement[bool]] = [
            or_(Call.recording_base.is_not(None), Call.recording_caller.is_not(None)),
            Call.answered_at.is_not(None),
        ]
        if f.date_from is not None:
            conds.append(Call.started_at >= datetime.combine(f.date_from, time(), tz))
        if f.date_to is not None:
            end = datetime.combine(f.date_to + timedelta(days=1), time(), tz)
            conds.append(Call.started_at < end)
        if f.hotline:
            conds.append(Call.hotline_number == f.hotline)
        if f.shift:
            conds.append(Call.shift_id == f.shift)
        if f.agent:
            conds.append(Call.agent_extension == f.agent)
        if f.only_extension is not None:
            conds.append(Call.agent_extension == f.only_extension)
        if f.outcome:
            conds.append(Call.outcome == f.outcome)
        if f.min_seconds is not None:
            conds.append(Call.talk_seconds >= f.min_seconds)
        if f.max_seconds is not None:
            conds.append(Call.talk_seconds <= f.max_seconds)
        if f.has_ticket is not None:
            linked = exists().where(Ticket.call_id == Call.id)
            conds.append(linked if f.has_ticket else ~linked)
        if f.call_ids is not None:
            conds.append(Call.id.in_(f.call_ids) if f.call_ids else Call.id == -1)
        if f.viewer is not None:
            conds.append(~self._hidden(f.viewer))
        return conds

    def _hidden(self, actor: Actor) -> ColumnElement[bool]:
        """Calls with a ticket the actor may not see (tickets.confidential): neither
        listed, found by their transcript, nor replayed."""
        return exists().where(
            Ticket.call_id == Call.id, not_(visible_to(actor, self.settings.tickets))
        )

    async def hidden_from(self, actor: Actor, call_id: int) -> bool:
        """Whether the call has a ticket ``actor`` may not see."""
        async with self.db.session() as s:
            found = await s.scalar(select(Call.id).where(Call.id == call_id, self._hidden(actor)))
            return found is not None

    async def list_calls(
        self, f: CallFilter, *, page: int = 1, per_page: int = 50
    ) -> tuple[list[CallRow], int]:
        """Recorded calls matching ``f``, newest first, with the total count."""
        conds = self._conditions(f)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(Call).where(and_(*conds)))
            calls = list(
                await s.scalars(
                    select(Call)
                    .where(and_(*conds))
                    .order_by(Call.started_at.desc(), Call.id.desc())
                    .limit(per_page)
                    .offset((max(page, 1) - 1) * per_page)
                )
            )
            ids = [c.id for c in calls]
            rows = {c.id: CallRow(c) for c in calls}
            if ids:
                for linked, code in await s.execute(
                    select(Ticket.call_id, Ticket.code)
                    .where(Ticket.call_id.in_(ids))
                    .order_by(Ticket.id)
                ):
                    if linked is not None:
                        rows[linked].tickets.append(code)
                for call_id in await s.scalars(
                    select(Transcript.call_id).where(Transcript.call_id.in_(ids))
                ):
                    rows[call_id].transcript = True
                for call_id, status in await s.execute(
                    select(TranscriptionJob.call_id, TranscriptionJob.status).where(
                        TranscriptionJob.call_id.in_(ids)
                    )
                ):
                    rows[call_id].job_status = status
        return [rows[i] for i in ids], int(total or 0)

    async def call(self, call_id: int) -> Call | None:
        async with self.db.session() as s:
            return await s.get(Call, call_id)

    async def ticket_codes(self, call_id: int) -> list[str]:
        async with self.db.session() as s:
            return list(
                await s.scalars(
                    select(Ticket.code).where(Ticket.call_id == call_id).order_by(Ticket.id)
                )
            )

    # -- audio --------------------------------------------------------------

    def _inside(self, path: str | None) -> Path | None:
        """``path`` if it is a file inside the recordings directory."""
        if not path:
            return None
        p = Path(path)
        try:
            resolved = p.resolve()
        except OSError:
            return None
        root = self.settings.recordings_dir.resolve()
        if not resolved.is_relative_to(root):
            log.warning("recording %s is outside %s: not served", resolved, root)
            return None
        return resolved if resolved.is_file() else None

    def sources(self, call: Call) -> list[Path]:
        """The WAV files to mix for ``call``: both sides, or else the mixed file.

        Blocking (it looks at the disk): call it in a thread from async code.
        """
        caller, agent = call.recording_caller, call.recording_agent
        if call.recording_base and not (caller or agent):
            caller, agent = side_files(call.recording_base)
        sides = [p for p in (self._inside(caller), self._inside(agent)) if p is not None]
        if sides:
            return sides
        if call.recording_base:
            mixed = self._inside(mixed_file(call.recording_base))
            if mixed is not None:
                return [mixed]
        return []

    def cache_path(self, call_id: int) -> Path:
        return cached_files(self.settings, call_id)[0]

    def peaks_path(self, call_id: int) -> Path:
        return cached_files(self.settings, call_id)[1]

    async def peaks(self, call: Call) -> dict[str, Any] | None:
        """The waveform of the call: ``{"duration": s, "peaks": [0..1, ...]}``; None without audio.

        Computed once from the WAV files in a thread (never in the event loop)
        and cached beside the browser copy; made again when the files change.
        """
        lock = self._locks.get(call.id)
        if lock is None:
            lock = self._locks[call.id] = asyncio.Lock()
        async with lock:
            return await asyncio.to_thread(self._peaks, call)

    def _peaks(self, call: Call) -> dict[str, Any] | None:
        sources = self.sources(call)
        target = self.peaks_path(call.id)
        if not sources:
            target.unlink(missing_ok=True)
            return None
        newest = max(p.stat().st_mtime for p in sources)
        try:
            if target.stat().st_mtime >= newest:
                os.utime(target)  # served now (prune_cache)
                cached: dict[str, Any] = json.loads(target.read_text())
                return cached
        except (FileNotFoundError, ValueError):
            pass
        result = waveform_peaks(sources)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, separators=(",", ":"))
        os.replace(tmp, target)
        return result

    async def browser_audio(self, call: Call) -> Path | None:
        """An MP3 of the call, both sides mixed; None when no audio is left.

        Converted once (in a thread, never in the event loop) and cached; a
        cached file whose sources are gone (purged) is removed, not served.
        """
        lock = self._locks.get(call.id)
        if lock is None:
            lock = self._locks[call.id] = asyncio.Lock()
        async with lock:
            path = await asyncio.to_thread(self._browser_audio, call)
        if time_module.monotonic() >= self._next_prune:
            self._next_prune = time_module.monotonic() + PRUNE_EVERY_SECONDS
            await asyncio.to_thread(self.prune_cache)
        return path

    def _browser_audio(self, call: Call) -> Path | None:
        sources = self.sources(call)
        target = self.cache_path(call.id)
        if not sources:
            target.unlink(missing_ok=True)
            return None
        newest = max(p.stat().st_mtime for p in sources)
        try:
            st = target.stat()
            if st.st_mtime >= newest and st.st_size > 0:
                os.utime(target)  # served now: its age counts from here (prune_cache)
                return target
        except FileNotFoundError:
            pass
        convert(sources, target)
        return target

    def prune_cache(self, now: float | None = None) -> int:
        """Remove browser copies not served for ``CACHE_DAYS``; how many.  Blocking."""
        limit = (now if now is not None else time_module.time()) - CACHE_DAYS * 86400
        removed = 0
        for p in [
            *self.cache_dir.glob(f"*.{BROWSER_FORMAT}"),
            *self.cache_dir.glob("*.peaks.json"),
        ]:
            try:
                if p.stat().st_mtime < limit:
                    p.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


def _load(path: Path) -> Any:
    """A WAV file as a pydub segment (the file closed again).  Blocking."""
    from pydub import AudioSegment  # type: ignore[import-untyped]

    with path.open("rb") as f:
        return AudioSegment.from_file(f, format="wav")


def _mix(sources: list[Path]) -> Any:
    """``sources`` (WAV) overlaid into one mono segment.  Blocking."""
    from pydub import AudioSegment

    # mixed at the recording's own rate (8 kHz from Asterisk); ffmpeg resamples
    # while encoding, far faster than resampling in Python first
    segments = [_load(p).set_channels(1) for p in sources]
    rate = max(s.frame_rate for s in segments)
    longest = max(len(s) for s in segments)
    mixed = AudioSegment.silent(duration=longest, frame_rate=rate)
    for s in segments:
        mixed = mixed.overlay(s)
    return mixed


def waveform_peaks(sources: list[Path]) -> dict[str, Any]:
    """The loudest sample of each slice of the mix, 0..1, and its duration.  Blocking.

    What wavesurfer.js would otherwise decode the whole file in the browser for.
    """
    mixed = _mix(sources)
    samples = mixed.get_array_of_samples()
    full = float(1 << (8 * mixed.sample_width - 1))
    seconds = len(samples) / mixed.frame_rate if mixed.frame_rate else 0.0
    count = max(1, min(PEAKS_MAX, int(seconds * PEAKS_PER_SECOND)))
    step = max(1, len(samples) // count)
    peaks = []
    for i in range(0, step * count, step):
        chunk = samples[i : i + step]
        loudest = max(max(chunk), -min(chunk)) if chunk else 0
        peaks.append(round(min(loudest / full, 1.0), 3))
    return {"duration": round(seconds, 3), "peaks": peaks}


def convert(sources: list[Path], target: Path) -> None:
    """Mix ``sources`` (WAV) into one MP3 at ``target``, atomically.  Blocking."""
    mixed = _mix(sources)
    longest = len(mixed)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    try:
        mixed.export(
            tmp, format=BROWSER_FORMAT, bitrate=_BITRATE, parameters=["-ar", str(_RATE)]
        ).close()
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("converted %s for replay (%d ms)", target.name, longest)


# -- presentation helpers ---------------------------------------------------


def mmss(seconds: float | int | None) -> str:
    """``75`` → ``"1:15"``; hours when there are any (``"1:02:03"``)."""
    if seconds is None:
        return ""
    total = max(int(round(seconds)), 0)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def parse_duration(text: str) -> int | None:
    """``"90"`` or ``"1:30"`` → 90 seconds; raises ValueError for anything else."""
    text = text.strip()
    if not text:
        return None
    parts = text.split(":")
    if len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    total = 0
    for p in parts:
        total = total * 60 + int(p)
    return total


def transcript_view(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segments ready for a template: each with words (or its text as one word)."""
    out = []
    for seg in segments:
        words = seg.get("words") or []
        start = float(seg.get("start") or 0)
        end = float(seg.get("end") or start)
        if not words:
            words = [{"w": seg.get("text", ""), "start": start, "end": end}]
        out.append(
            {
                "speaker": seg.get("speaker", ""),
                "start": start,
                "end": end,
                "words": [
                    {
                        "w": str(w.get("w", "")),
                        "start": float(w.get("start") or 0),
                        "end": float(w.get("end") or 0),
                    }
                    for w in words
                ],
            }
        )
    return out
