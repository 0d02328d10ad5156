"""The state of transcription jobs in the database (the source of truth)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError

from callcenter.models import Call, VoiceMessage
from core.clock import Clock
from core.db import Database
from recordings.models import JobStatus, Transcript, TranscriptionJob


class Start(StrEnum):
    GO = "go"  # transcribe it
    SKIP = "skip"  # already done or failed: nothing to do
    GAVE_UP = "gave_up"  # too many attempts: now failed


class JobStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def ensure(self, call_id: int) -> TranscriptionJob:
        """The job of ``call_id``, created queued if there is none."""
        async with self.db.session() as s:
            job = await s.get(TranscriptionJob, call_id)
            if job is None:
                now = self.clock.now()
                job = TranscriptionJob(
                    call_id=call_id,
                    status=JobStatus.QUEUED,
                    attempts=0,
                    queued_at=now,
                    updated_at=now,
                )
                s.add(job)
            return job

    async def ensure_many(self, call_ids: Iterable[int], chunk: int = 500) -> None:
        """Create the missing queued jobs of ``call_ids``, a transaction per ``chunk``.

        A backlog of months of calls is thousands of rows: one transaction
        each would hold the scan for minutes.  Should a worker create one of
        the rows at the same moment, that chunk is done one row at a time.
        """
        ids = sorted(set(call_ids))
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            try:
                async with self.db.session() as s:
                    have = set(
                        (
                            await s.scalars(
                                select(TranscriptionJob.call_id).where(
                                    TranscriptionJob.call_id.in_(part)
                                )
                            )
                        ).all()
                    )
                    now = self.clock.now()
                    s.add_all(
                        TranscriptionJob(
                            call_id=call_id,
                            status=JobStatus.QUEUED,
                            attempts=0,
                            queued_at=now,
                            updated_at=now,
                        )
                        for call_id in part
                        if call_id not in have
                    )
            except IntegrityError:
                for call_id in part:
                    await self.ensure(call_id)

    async def start(self, call_id: int, worker: str, max_attempts: int) -> Start:
        """A worker takes the job: count the attempt, or say why not."""
        async with self.db.session() as s:
            if await s.get(Call, call_id) is None:
                return Start.SKIP  # not a call of this database (a stale or foreign job)
            job = await s.get(TranscriptionJob, call_id, with_for_update=True)
            now = self.clock.now()
            if job is None:
                job = TranscriptionJob(
                    call_id=call_id,
                    status=JobStatus.QUEUED,
                    attempts=0,
                    queued_at=now,
                    updated_at=now,
                )
                s.add(job)
            has_transcript = (
                await s.execute(select(Transcript.id).where(Transcript.call_id == call_id))
            ).first() is not None
            if has_transcript:
                job.status, job.updated_at = JobStatus.DONE, now
                return Start.SKIP
            if job.status in (JobStatus.DONE, JobStatus.FAILED):
                return Start.SKIP
            if job.attempts >= max_attempts:
                job.status = JobStatus.FAILED
                job.reason = (
                    f"gave up after {job.attempts} attempts "
                    f"([recordings] max_attempts); last: {job.reason or 'worker lost'}"
                )
                job.updated_at = now
                return Start.GAVE_UP
            job.attempts += 1
            job.status = JobStatus.RUNNING
            job.worker = worker[:200]
            job.updated_at = now
            if job.attempts > 1 and not job.reason:
                job.reason = "previous attempt did not finish (worker stopped or lost its lease)"
            return Start.GO

    async def finish(self, call_id: int, status: JobStatus, reason: str | None) -> None:
        async with self.db.session() as s:
            job = await s.get(TranscriptionJob, call_id)
            if job is None:
                return
            job.status = status
            job.reason = reason
            job.updated_at = self.clock.now()

    async def release(self, call_id: int, reason: str) -> None:
        """A stopping worker hands the job back; its attempt does not count."""
        async with self.db.session() as s:
            job = await s.get(TranscriptionJob, call_id)
            if job is None or job.status != JobStatus.RUNNING:
                return
            job.status = JobStatus.QUEUED
            job.attempts = max(0, job.attempts - 1)
            job.reason = reason
            job.updated_at = self.clock.now()

    async def backlog(self, limit: int = 10000) -> list[int]:
        """Ended calls with recordings (or a voice message), no transcript, and no finished job."""
        has_transcript = exists().where(Transcript.call_id == Call.id)
        job_open = or_(
            TranscriptionJob.call_id.is_(None),
            TranscriptionJob.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
        )
        q = (
            select(Call.id)
            .outerjoin(TranscriptionJob, TranscriptionJob.call_id == Call.id)
            .where(
                and_(
                    Call.recording_caller.is_not(None),
                    Call.answered_at.is_not(None),
                    Call.ended_at.is_not(None),
                    ~has_transcript,
                    job_open,
                )
            )
            .order_by(Call.id)
            .limit(limit)
        )
        # voice messages left in the overflow: the call was never answered, the
        # message is the caller's side alone
        voice = (
            select(VoiceMessage.call_id)
            .join(Call, Call.id == VoiceMessage.call_id)
            .outerjoin(TranscriptionJob, TranscriptionJob.call_id == Call.id)
            .where(~has_transcript, job_open)
            .order_by(VoiceMessage.call_id)
            .limit(limit)
        )
        async with self.db.session() as s:
            ids = [int(x) for x in (await s.execute(q)).scalars()]
            ids += [int(x) for x in (await s.execute(voice)).scalars() if x not in ids]
            return sorted(set(ids))[:limit]
