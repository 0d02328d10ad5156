"""Least privilege: the application runs as its own user and Asterisk as its
own, each owning what it writes and reading what the other writes through
Asterisk's group; checked with the real users, the real `hotline start`, the
real Asterisk and real calls."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import select

from callcenter.models import Call, Outcome
from core.settings import ConfigError, load_settings
from hotline import privilege, system
from hotline.carrier import Carrier, CarrierAddresses
from hotline.pbx import AsteriskInstance
from tests.helpers import make_home
from tests.lab import SLOT, Lab, eventually, lab_config

ROOT = Path(__file__).resolve().parents[2]
APP, PBX = "hotline", "hotline-pbx"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sets owners and starts as root")


@dataclass(frozen=True)
class Python:
    """An interpreter the service users can run, and the environment it needs."""

    exe: Path
    env: dict[str, str]


def _users() -> None:
    with tempfile.TemporaryDirectory() as d:
        settings = load_settings(make_home(Path(d)), env={})
        privilege.ensure_users(settings, say=lambda *_: None)


@pytest.fixture(scope="module")
def python() -> Iterator[Python]:
    """This interpreter with this env's packages, where the service users reach it.

    Where its installation lies in a folder they cannot enter (pyenv keeps it
    under /root, mode 0700), it is bind-mounted read-only into an open one,
    with a venv beside it that uses this env's site-packages: the same Python
    and packages, as an operator's install under /opt or /srv would be.
    """
    if os.geteuid() != 0:
        pytest.skip("sets owners and starts as root")
    _users()
    me = _creds(APP)
    if not privilege.unreachable(me, [Path(sys.executable), Path(sys.base_prefix) / "lib"]):
        yield Python(Path(sys.executable), {})
        return
    top = _open_home()
    base = top / "base"
    base.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", sys.base_prefix, str(base)], check=True)
    try:
        ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
        venv = top / "venv"
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python3").symlink_to(base / "bin" / ver)
        (venv / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\nversion = {ver[6:]}\n")
        (venv / "lib" / ver).mkdir(parents=True)
        (venv / "lib" / ver / "site-packages").symlink_to(sysconfig.get_paths()["purelib"])
        # a pyenv build names its libpython by an absolute path (RUNPATH) under /root
        found = Python(venv / "bin" / "python3", {"LD_LIBRARY_PATH": str(base / "lib")})
        done = _as(me, "import hotline.cli", python=found)
        if done.returncode != 0:
            pytest.skip(f"no Python the {APP} user can run here: {done.stderr[-500:]}")
        yield found
    finally:
        subprocess.run(["umount", str(base)], check=True)
        shutil.rmtree(top)


def _as(
    creds: privilege.Credentials, code: str, *args: str, python: Python
) -> subprocess.CompletedProcess[str]:
    """Python ``code`` run with exactly these credentials (as the service runs)."""
    return subprocess.run(
        [str(python.exe), "-c", code, *args],
        env={**os.environ, **python.env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        user=creds.uid,
        group=creds.gid,
        extra_groups=list(creds.groups),
        umask=privilege.UMASK,
        cwd="/",
    )


WRITE = "import sys; open(sys.argv[1], 'w').write('x')"
READ = "import sys; open(sys.argv[1], 'rb').read(1)"


def _creds(name: str) -> privilege.Credentials:
    u = pwd.getpwnam(name)
    groups = tuple(g.gr_gid for g in grp.getgrall() if name in g.gr_mem)
    return privilege.Credentials(name, u.pw_uid, u.pw_gid, groups)


def _open_home() -> Path:
    """A home every user can reach (pytest's own folders are root's alone)."""
    home = Path(tempfile.mkdtemp(prefix="hotline-lp-", dir="/var/tmp"))
    home.chmod(0o755)
    return home


def test_a_closed_folder_on_the_way_is_named() -> None:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        Path(d).chmod(0o755)
        closed = Path(d) / "closed"
        (closed / "home" / "config").mkdir(parents=True)
        closed.chmod(0o700)
        cfg = closed / "home" / "config" / "hotline.toml"
        cfg.write_text("")
        stranger = privilege.Credentials("stranger", 54321, 54321, ())
        problems = privilege.unreachable(stranger, [cfg])
        assert len(problems) == 1 and f"the folder {closed} (mode 0700" in problems[0]
        closed.chmod(0o755)
        cfg.chmod(0o600)
        assert privilege.unreachable(stranger, [cfg]) == [
            f"{cfg}: the user stranger cannot read it"
        ]
        cfg.chmod(0o644)
        assert privilege.unreachable(stranger, [cfg]) == []
        # writing the state needs the folder's write bit for that user
        assert "cannot write" in privilege.unreachable(stranger, [], write=[cfg.parent])[0]


def test_each_user_owns_what_it_writes_and_reads_what_the_other_does(python: Python) -> None:
    home = _open_home()
    try:
        make_home(home)
        settings = load_settings(home / "config" / "hotline.toml", env={})
        privilege.ensure_users(settings, say=lambda *_: None)
        assert APP in grp.getgrnam(PBX).gr_mem  # the application reads through Asterisk's group
        state = settings.state_dir
        day = settings.recordings_dir / "2026" / "12" / "07"
        day.mkdir(parents=True)
        for path in (
            state / "hotline.db",
            state / "secrets.toml",
            state / "log" / "hotline.log",
            day / "pbx-1.1-in.wav",  # as an earlier root-run Asterisk left it
            settings.prompts_dir / "vi" / "greeting.wav",
            settings.asterisk_dir / "etc" / "manager.conf",
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('ami_secret = "x"\n' if path.name == "secrets.toml" else "x")
        # as hotline.service's ExecStartPre does it, as root
        done = subprocess.run(
            [str(python.exe), "-m", "hotline.cli", "--home", str(home), "permissions"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **python.env, "PYTHONPATH": str(ROOT)},
            cwd="/",
        )
        assert done.returncode == 0, done.stderr
        assert "the application runs as hotline, Asterisk as hotline-pbx" in done.stdout

        app, pbx = _creds(APP), _creds(PBX)
        rec = day / "pbx-1.1-in.wav"
        st = rec.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (pbx.uid, pbx.gid, 0o660)
        assert settings.recordings_dir.stat().st_mode & 0o7777 == 0o2770
        assert (state / "secrets.toml").stat().st_mode & 0o777 == 0o600
        assert (state / "hotline.db").stat().st_uid == app.uid
        # the application: its own state, the recordings (to read and purge)
        for target in (state / "hotline.db", state / "new-file", day / "voicemail-folder-file"):
            assert _as(app, WRITE, str(target), python=python).returncode == 0, target
        assert _as(app, READ, str(rec), python=python).returncode == 0
        # Asterisk: records, reads prompts and its configuration, and nothing of the application's
        assert _as(pbx, WRITE, str(day / "pbx-2.1-in.wav"), python=python).returncode == 0
        for readable in (settings.prompts_dir / "vi" / "greeting.wav", rec):
            assert _as(pbx, READ, str(readable), python=python).returncode == 0, readable
        assert (
            _as(
                pbx, READ, str(settings.asterisk_dir / "etc" / "manager.conf"), python=python
            ).returncode
            == 0
        )
        for private in (
            state / "hotline.db",
            state / "secrets.toml",
            state / "log" / "hotline.log",
        ):
            done = _as(pbx, READ, str(private), python=python)
            assert "PermissionError" in done.stderr, private
        for theirs in (settings.prompts_dir / "vi" / "new.wav", state / "log" / "x"):
            assert "PermissionError" in _as(pbx, WRITE, str(theirs), python=python).stderr, theirs
        # a file Asterisk made is the application's to read, by the group
        assert _as(app, READ, str(day / "pbx-2.1-in.wav"), python=python).returncode == 0
    finally:
        shutil.rmtree(home)


@needs_root
def test_a_missing_user_is_named_by_its_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_home(home)
    cfg = home / "config" / "hotline.toml"
    text = re.sub(r'^user = "hotline"$', 'user = "hotline-nobody"', cfg.read_text(), flags=re.M)
    cfg.write_text(text)
    settings = load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="user: there is no system user 'hotline-nobody'"):
        privilege.app_credentials(settings)


# ---- through the real parts ------------------------------------------------------


@pytest.mark.asterisk
async def test_the_lab_asterisk_runs_as_its_own_user_and_records(carrier: Lab, app) -> None:
    lab = carrier
    pid = int(lab.pbx.pid_path.read_text())
    ps = await asyncio.create_subprocess_exec(
        "ps", "-o", "user=", "-p", str(pid), stdout=asyncio.subprocess.PIPE
    )
    user = (await ps.communicate())[0].decode().strip()
    assert user == PBX
    number = "09" + "".join(random.choices("0123456789", k=8))
    await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=6)

    async def ended() -> Call | None:
        async with app.db.session() as s:
            c = await s.scalar(select(Call).where(Call.caller_number == number))
        return c if c is not None and c.ended_at is not None else None

    call = await eventually(ended, timeout=60)
    assert call.outcome == Outcome.ANSWERED and call.recording_caller and call.recording_agent
    pbx = pwd.getpwnam(PBX)
    for side in (call.recording_caller, call.recording_agent):
        st = await eventually(lambda side=side: _stat_when_written(Path(side)), timeout=15)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (pbx.pw_uid, pbx.pw_gid, 0o660)
    queue_log = lab.settings.queue_log.stat()
    assert queue_log.st_uid == pbx.pw_uid and queue_log.st_mode & 0o040


async def _stat_when_written(path: Path) -> os.stat_result | None:
    st = path.stat() if path.exists() else None
    return st if st is not None and st.st_size > 44 else None  # past the WAV header


# -- `hotline start` as root: the application drops to its user ---------------------

# ports apart from the session's lab on the same slot
_P, _R = 100 * SLOT + 50, 125 * SLOT
CARRIER = CarrierAddresses(
    sip_port=15060 + _P, ami_port=15039 + _P, rtp_start=20000 + _R, rtp_end=20124 + _R
)


@pytest.fixture
def started_home(python: Python) -> Iterator[tuple[Path, Path]]:
    """A home started with `hotline start` as root, as a container does; stopped after."""
    from tests.recordings.conftest import MODEL

    home = _open_home()
    cfg = lab_config()
    cfg["asterisk"].update(
        sip_port=15060 + _P, ami_port=15038 + _P, rtp_start=19000 + _R, rtp_end=19124 + _R
    )
    cfg["agi"]["port"] = 14573 + _P
    cfg["panel"] = {"port": 18080 + _P, "redis_prefix": f"lptest{os.getpid()}"}
    cfg["public"] = {"port": 18090 + _P}
    cfg["service"] = {"user": APP, "pbx_user": PBX}
    cfg["recordings"]["vosk_model"] = str(MODEL)
    cfg["recordings"]["workers"] = 1
    path = home / "config" / "hotline.toml"
    path.parent.mkdir(parents=True)
    path.write_text(tomli_w.dumps(cfg))
    env = {k: v for k, v in os.environ.items() if k not in ("HOTLINE_CONFIG", "HOTLINE_HOME")}
    env.update(python.env, PYTHONPATH=str(ROOT), HOTLINE_HOME=str(home))
    hotline = [str(python.exe), "-m", "hotline.cli", "--config", str(path)]
    try:
        for step in (["setup", "--no-start", "--no-model"], ["start"]):
            done = subprocess.run(
                [*hotline, *step], capture_output=True, text=True, timeout=600, env=env, cwd="/"
            )
            if "does not let the user" in done.stderr:
                pytest.skip(f"the code is out of the {APP} user's reach here: {done.stderr}")
            assert done.returncode == 0, done.stdout + done.stderr
        yield home, path
    finally:
        subprocess.run([*hotline, "stop"], capture_output=True, timeout=120, env=env, cwd="/")
        settings = load_settings(path, env={"HOTLINE_HOME": str(home)})
        inst = system.instance(settings, system.asterisk_root(settings))
        inst.stop()  # a no-op once `hotline stop` did it; else no Asterisk or mount is left
        shutil.rmtree(home)


def _proc_ids(pid: int) -> tuple[int, int, set[int]]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    uids = {int(x) for x in status["Uid"].split()}
    gids = {int(x) for x in status["Gid"].split()}
    assert len(uids) == 1 and len(gids) == 1, status  # real, effective, saved: all dropped
    return uids.pop(), gids.pop(), {int(x) for x in status["Groups"].split()}


@pytest.mark.asterisk
@needs_root
# setup, Asterisk's boot, the model's load and a transcription: some 4 minutes
# on a busy machine, over the suite's 300 s per test
@pytest.mark.timeout(900)
async def test_hotline_start_as_root_runs_the_application_as_its_user(
    started_home: tuple[Path, Path], python: Python, tmp_path: Path
) -> None:
    from recordings.models import JobStatus, Transcript, TranscriptionJob
    from tests.recordings.conftest import speech
    from tests.recordings.test_transcribe import CITIZEN_SAYS

    home, path = started_home
    settings = load_settings(path, env={"HOTLINE_HOME": str(home)})
    app, pbx = pwd.getpwnam(APP), pwd.getpwnam(PBX)

    pid = system.app_pid(settings)
    assert pid is not None
    uid, gid, groups = _proc_ids(pid)
    assert (uid, gid) == (app.pw_uid, app.pw_gid) and pbx.pw_gid in groups
    inst: AsteriskInstance = system.instance(settings, system.asterisk_root(settings))
    asterisk_uid, _, _ = _proc_ids(int(inst.pid_path.read_text()))
    assert asterisk_uid == pbx.pw_uid

    # it writes its var/: the database setup made, and the log
    db = settings.state_dir / "hotline.db"
    assert db.stat().st_uid == app.pw_uid
    assert (settings.state_dir / "log" / "hotline.log").stat().st_uid == app.pw_uid

    # a real call, recorded by Asterisk and transcribed by the application's worker:
    # the application reads what Asterisk wrote
    root = system.asterisk_root(settings)
    carrier = Carrier(settings, tmp_path / "carrier", root, CARRIER)
    words = speech(tmp_path / "citizen.wav", CITIZEN_SAYS, before=4.0, after=1.0)
    sound = carrier.add_sound("citizen-ko", words)
    number = "09" + "".join(random.choices("0123456789", k=8))
    carrier.start()
    try:
        await carrier.connect()
        await carrier.wait_registered(60)
        await carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=13, caller_sound=sound)

        def row(sql: str, *params: object) -> tuple | None:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
                return c.execute(sql, params).fetchone()

        async def transcribed() -> tuple | None:
            return await asyncio.to_thread(
                row,
                "SELECT c.recording_caller, j.status, j.reason, t.text "
                f"FROM {Call.__tablename__} c "
                f"JOIN {TranscriptionJob.__tablename__} j ON j.call_id = c.id "
                f"LEFT JOIN {Transcript.__tablename__} t ON t.call_id = c.id "
                "WHERE c.caller_number = ? AND j.status IN (?, ?)",
                number,
                JobStatus.DONE.value,
                JobStatus.FAILED.value,
            )

        recording, status, reason, text = await eventually(transcribed, timeout=180, every=1)
        assert Path(recording).stat().st_uid == pbx.pw_uid  # Asterisk's file
        assert status == JobStatus.DONE.value and text, (status, reason)
    finally:
        await carrier.close()
        carrier.stop()

    # ... and nothing outside its home: the code, the system, Asterisk's own tree
    creds = privilege.Credentials(APP, uid, gid, tuple(groups - {gid}))
    assert _as(creds, WRITE, str(settings.state_dir / "probe"), python=python).returncode == 0
    for outside in (
        ROOT / "hotline" / "probe.py",
        Path("/etc/hotline-probe"),
        Path(sys.executable).parent / "probe",
        settings.asterisk.cache_dir / "probe",
        inst.spool_dir / "probe",
        home / "config" / "probe",
    ):
        done = _as(creds, WRITE, str(outside), python=python)
        assert "PermissionError" in done.stderr, (outside, done.stderr)
