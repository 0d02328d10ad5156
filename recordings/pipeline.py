"""The application's side of transcription: queue calls, run workers, purge daily.

- When a call with a recording ends, its id is handed over
  (:meth:`TranscriptionPipeline.call_ended`, which does not wait: it runs on
  the AMI dispatch, where every event waits for it); the pipeline's own task
  writes the jobs to the database and queues the ids in Redis, in batches.
- At start and every ``scan_seconds``, ended calls with recordings that have
  no transcript and no finished job are queued again: nothing recorded is
  left untranscribed, whatever Redis lost.
- ``[recordings] workers`` worker processes are started (and restarted if
  one dies) when the model is there; when it is missing, the application
  says so and queues anyway, and starts them once the model appears.  Each
  stops by itself when the application is gone, even killed with SIGKILL
  (:func:`watch_parent`): a restarted application starts its own.
- The retention purge runs at start and then once a day.

No audio is touched here: decoding runs in the worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence

from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from recordings.jobs import JobStore
from recordings.purge import RecordingPurge
from recordings.queue import JobQueue
from recordings.transcribe import model_problem

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 24 * 3600
# A worker started by the application finds its parent's pid here and stops when
# that process is gone (a killed application must not leave workers behind).
PARENT_ENV = "HOTLINE_WORKER_PARENT"


async def watch_parent(parent: int, gone: Callable[[], None], every: float = 1.0) -> None:
    """Call ``gone`` once the process ``parent`` is no longer this one's parent
    (it exited, however, and this process was handed to init or a subreaper)."""
    while os.getppid() == parent:  # noqa: ASYNC110 - no event tells a parent's exit
        await asyncio.sleep(every)
    log.warning("transcription worker: the application (pid %d) is gone; stopping", parent)
    gone()


class WorkerProcesses:
    """N worker subprocesses, restarted when one exits, stopped with SIGTERM."""

    def __init__(self, command: Sequence[str], count: int, env: dict[str, str]) -> None:
        self.command = list(command)
        self.count = count
        self.env = env
        self.procs: list[asyncio.subprocess.Process] = []

    async def ensure(self) -> None:
        alive = [p for p in self.procs if p.returncode is None]
        for p in self.procs:
            if p.returncode is not None:
                log.warning(
                    "transcription worker pid %d exited (%d); starting another", p.pid, p.returncode
                )
        self.procs = alive
        while len(self.procs) < self.count:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                env={**self.env, PARENT_ENV: str(os.getpid())},
            )
            log.info("transcription worker started (pid %d)", proc.pid)
            self.procs.append(proc)

    async def stop(self, timeout: float = 10) -> None:
        for p in self.procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
        self.procs = []


class TranscriptionPipeline:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: Bus,
        clock: Clock,
        *,
        worker_command: Sequence[str] | None = None,
        scan_seconds: float = 60,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.queue = JobQueue(bus.redis, settings.panel.redis_prefix)
        self.jobs = JobStore(db, clock)
        self.purge = RecordingPurge(settings, db, clock)
        self.scan_seconds = scan_seconds
        self.workers: WorkerProcesses | None = None
        if worker_command and settings.recordings.workers > 0:
            env = dict(os.environ)
            env["HOTLINE_DATABASE_URL"] = settings.database
            self.workers = WorkerProcesses(worker_command, settings.recordings.workers, env)
        self._task: asyncio.Task[None] | None = None
        self._ended: asyncio.Queue[int] = asyncio.Queue()
        self._enqueuer: asyncio.Task[None] | None = None
        self._model_reported: str | None = None

    def model_problem(self) -> str | None:
        return model_problem(self.settings.vosk_model)

    async def start(self) -> None:
        await self._check_model_and_workers()
        try:
            queued = await self.scan()
            if queued:
                log.info("transcription: %d recorded calls queued from the backlog", queued)
        except Exception:  # noqa: BLE001 - Redis may be down; the loop tries again
            log.exception("transcription: backlog scan failed; retrying later")
        self._task = asyncio.create_task(self._loop(), name="transcription-pipeline")
        self._enqueuer = asyncio.create_task(self._enqueue_ended(), name="transcription-enqueue")

    async def stop(self) -> None:
        if self._enqueuer is not None:
            # Calls ended just before the stop are queued now if that is quick;
            # whatever is left, the next start's scan finds in the database.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.join(), 5)
            self._enqueuer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._enqueuer
            self._enqueuer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.workers is not None:
            await self.workers.stop()

    async def _check_model_and_workers(self) -> None:
        problem = self.model_problem()
        if problem:
            if problem != self._model_reported:
                log.warning("transcription: %s", problem)
                self._model_reported = problem
            return
        if self._model_reported:
            log.info("transcription: Vosk model found at %s", self.settings.vosk_model)
            self._model_reported = None
        if self.workers is not None:
            await self.workers.ensure()

    async def _loop(self) -> None:
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._check_model_and_workers()
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged; next round
                log.exception("transcription: scan failed")
            if loop.time() >= next_purge:
                next_purge = loop.time() + PURGE_EVERY_SECONDS
                try:
                    await self.purge.run()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - logged; tomorrow again
                    log.exception("recordings purge failed")
            await asyncio.sleep(self.scan_seconds)

    async def call_ended(self, call_id: int) -> None:
        """Hand a recorded call that ended to the pipeline's queueing task."""
        self._ended.put_nowait(call_id)

    async def _enqueue_ended(self) -> None:
        while True:
            batch = [await self._ended.get()]
            while not self._ended.empty() and len(batch) < 200:
                batch.append(self._ended.get_nowait())
            try:
                await self.queue_calls(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next scan queues them
                log.exception("transcription: could not queue calls %s (the scan will)", batch)
            finally:
                for _ in batch:
                    self._ended.task_done()

    async def queue_calls(self, call_ids: list[int]) -> int:
        """Write the calls' jobs (the DB is the truth), then queue them; how many were added."""
        await self.jobs.ensure_many(call_ids)
        added = 0
        for call_id in call_ids:
            if await self.queue.enqueue(call_id):
                added += 1
        return added

    async def scan(self) -> int:
        """Queue every recorded call that still needs a transcript; how many were added."""
        ids = await self.jobs.backlog()
        if not ids:
            return 0
        known = await self.queue.known()
        return await self.queue_calls([i for i in ids if i not in known])
