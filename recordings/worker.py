"""A transcription worker: takes jobs from Redis, transcribes, stores, finishes.

Runs as its own process (``hotline transcribe-worker``; the application
starts ``[recordings] workers`` of them, and more can run on other machines
against the same Redis and database).  The model is loaded once; Vosk runs
in a thread, so the lease's heartbeat goes on while it decodes.  A worker
that dies leaves its lease to expire, and the job goes to another worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from callcenter.models import Call, VoiceMessage
from callcenter.recording_files import side_files
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.retry import Outage
from core.settings import Settings
from recordings.audio import UnusableAudio
from recordings.jobs import JobStore, Start
from recordings.models import JobStatus
from recordings.queue import JobQueue
from recordings.store import save_transcript
from recordings.transcribe import CallTranscript, Transcriber

log = logging.getLogger(__name__)

T = TypeVar("T")
REDIS_ERRORS = (OSError, RedisError)

# a file written less than this long ago may still be open in MixMonitor
SETTLE_SECONDS = 1.0
# how long a worker waits for a recording file that is not there yet
APPEAR_SECONDS = 10.0


async def in_daemon_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a daemon thread: a stopping worker does not wait for a decode."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)  # type: ignore[arg-type]

    def body() -> None:
        try:
            result = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, e)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=body, name="vosk", daemon=True).start()
    return await fut


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _wait_for_files(files: list[Path]) -> None:
    """Give Asterisk a moment to close the recording files after the hang-up."""
    deadline = time.monotonic() + APPEAR_SECONDS
    while time.monotonic() < deadline:
        try:
            newest = max(f.stat().st_mtime for f in files)
        except FileNotFoundError:
            time.sleep(0.2)
            continue
        age = time.time() - newest
        if age >= SETTLE_SECONDS:
            return
        time.sleep(SETTLE_SECONDS - age)
    # missing files are reported by the transcriber, by name


class TranscriptionWorker:
    """See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        model_path: Path,
        db: Database | None = None,
        bus: Bus | None = None,
        clock: Clock | None = None,
        name: str | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.settings = settings
        self.model_path = model_path
        self.clock = clock or Clock()
        self.db = db or Database(settings.database)
        self.bus = bus or Bus(settings.panel.redis_url, settings.panel.redis_prefix)
        self.queue = JobQueue(self.bus.redis, settings.panel.redis_prefix)
        self.jobs = JobStore(self.db, self.clock)
        self.name = name or worker_name()
        self.poll_seconds = poll_seconds
        self.lease = settings.recordings.job_lease_seconds
        self.transcriber: Transcriber | None = None
        self.done = 0

    async def load(self) -> None:
        """Load the model (raises ModelMissing with the reason when it is not usable)."""
        if self.transcriber is None:
            self.transcriber = await asyncio.to_thread(
                Transcriber, self.model_path, min_seconds=self.settings.recordings.min_seconds
            )
            log.info(
                "transcription worker %s: model %s loaded (%d Hz)",
                self.name,
                self.transcriber.name,
                self.transcriber.rate,
            )

    async def close(self) -> None:
        await self.bus.close()
        await self.db.close()

    async def run(self, stop: asyncio.Event, *, max_jobs: int | None = None) -> None:
        """Take and do jobs until ``stop`` is set (or ``max_jobs`` are done)."""
        await self.load()
        redis = Outage("transcription worker: Redis", logger=log)
        database = Outage("transcription worker: database", logger=log)
        while not stop.is_set():
            try:
                call_id = await self.queue.claim(self.name, self.lease)
            except REDIS_ERRORS as e:
                await self._pause(stop, redis.failed(e))
                continue
            redis.ok()
            if call_id is None:
                await self._pause(stop, self.poll_seconds)
                continue
            try:
                await self.process(call_id)
            except SQLAlchemyError as e:
                # the database is away: the application's scan queues the job again
                await self._pause(stop, database.failed(f"job {call_id}: {e}"))
                continue
            database.ok()
            self.done += 1
            if max_jobs is not None and self.done >= max_jobs:
                return

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _heartbeat(self, call_id: int) -> None:
        every = max(1.0, self.lease / 3)
        while True:
            await asyncio.sleep(every)
            try:
                if not await self.queue.renew(call_id, self.name, self.lease):
                    log.warning("job %d: lease lost (another worker may take it)", call_id)
            except REDIS_ERRORS as e:
                log.warning("job %d: heartbeat failed (%s)", call_id, e)

    async def process(self, call_id: int) -> JobStatus | None:
        """Do one claimed job; returns how it ended (None: nothing to do)."""
        beat = asyncio.create_task(self._heartbeat(call_id), name=f"heartbeat-{call_id}")
        outcome: JobStatus | None = None
        try:
            outcome = await self._process(call_id)
            return outcome
        except asyncio.CancelledError:
            outcome = JobStatus.QUEUED
            raise
        finally:
            beat.cancel()
            try:
                await beat
            except asyncio.CancelledError:
                pass
            try:
                await asyncio.shield(self.queue.finish(call_id, self.name))
            except REDIS_ERRORS as e:
                log.warning("job %d: could not release the lease (%s)", call_id, e)
            if outcome is JobStatus.QUEUED:
                # an error that may pass, or a stop: once more, up to
                # max_attempts (the application's scan queues it if this is lost)
                try:
                    await asyncio.shield(self.queue.enqueue(call_id))
                except REDIS_ERRORS:
                    pass

    async def _process(self, call_id: int) -> JobStatus | None:
        assert self.transcriber is not None
        started = await self.jobs.start(call_id, self.name, self.settings.recordings.max_attempts)
        if started is Start.SKIP:
            return None
        if started is Start.GAVE_UP:
            log.warning("job %d: failed after too many attempts", call_id)
            return JobStatus.FAILED
        async with self.db.session() as s:
            call = (await s.execute(select(Call).where(Call.id == call_id))).scalar_one_or_none()
        voice = None
        if call is not None and call.answered_at is None:
            # never answered: what there is to hear is the voice message the caller left
            async with self.db.session() as s:
                voice = await s.scalar(
                    select(VoiceMessage.path).where(VoiceMessage.call_id == call_id).limit(1)
                )
        if call is None or not (call.recording_base or voice):
            await self.jobs.finish(call_id, JobStatus.FAILED, "the call has no recording")
            return JobStatus.FAILED
        caller, agent = side_files(call.recording_base)
        files = (
            [Path(voice)]
            if voice
            else [
                Path(call.recording_caller or caller or ""),
                Path(call.recording_agent or agent or ""),
            ]
        )
        t0 = time.monotonic()
        try:
            await in_daemon_thread(_wait_for_files, files)
            if voice:
                result: CallTranscript = await in_daemon_thread(
                    self.transcriber.transcribe_message, files[0]
                )
            else:
                result = await in_daemon_thread(
                    self.transcriber.transcribe_call, files[0], files[1]
                )
        except asyncio.CancelledError:
            # the worker is stopping: hand the job back, this attempt not counted
            await asyncio.shield(self.jobs.release(call_id, "worker stopped mid-job"))
            raise
        except UnusableAudio as e:
            log.warning("job %d: unusable audio: %s", call_id, e)
            await self.jobs.finish(call_id, JobStatus.FAILED, str(e))
            return JobStatus.FAILED
        except Exception as e:  # noqa: BLE001 - recorded on the job; retried up to max_attempts
            log.exception("job %d: transcription failed", call_id)
            await self.jobs.finish(call_id, JobStatus.QUEUED, f"error: {e}"[:2000])
            return JobStatus.QUEUED
        await save_transcript(
            self.db,
            call_id,
            result.segments,
            model=self.transcriber.name,
            audio_seconds=result.audio_seconds,
            now=self.clock.now(),
        )
        await self.jobs.finish(call_id, JobStatus.DONE, None)
        log.info(
            "job %d: transcribed %.1f s of audio in %.1f s (%d segments)",
            call_id,
            result.audio_seconds,
            time.monotonic() - t0,
            len(result.segments),
        )
        return JobStatus.DONE
