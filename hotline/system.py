"""Set-up and operation of the whole system on one machine.

Finds or builds Asterisk, lays out its instance, renders its configuration,
generates prompts and music on hold, migrates the database, and starts,
stops and reloads the pieces.  The CLI (`hotline ...`) is a thin layer over it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from core.ami import AMIClient
from core.settings import LANGUAGES, Settings, config_path, ensure_secrets, load_settings
from dialplan import prompts, render
from hotline import privilege
from hotline.app import AMI_EVENTS
from hotline.chroot import ensure_chroot
from hotline.pbx import AsteriskInstance, find_host_asterisk
from hotline.sysrun import PbxError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Config file -> the module whose reload applies it (reloads never drop calls).
RELOAD_MODULES = {
    "extensions.conf": "pbx_config",
    "pjsip.conf": "res_pjsip",
    "queues.conf": "app_queue",
    "manager.conf": "manager",
    "musiconhold.conf": "res_musiconhold",
    "rtp.conf": "res_rtp_asterisk",
    "logger.conf": "logger",
}


def asterisk_root(settings: Settings, *, say=print) -> Path | None:  # type: ignore[no-untyped-def]
    """None to use an installed Asterisk >= 20, else the (cached) chroot's path."""
    if settings.asterisk.binary:
        if not Path(settings.asterisk.binary).exists():
            raise PbxError(f"asterisk.binary: {settings.asterisk.binary} does not exist")
        return None
    if find_host_asterisk(20):
        return None
    return ensure_chroot(settings.asterisk.cache_dir, log=say)


def binds(settings: Settings) -> tuple[Path, ...]:
    """Host folders Asterisk must see at the same path (recordings, prompts, overrides)."""
    wanted = [
        settings.state_dir,
        settings.recordings_dir,
        settings.prompts_dir,
        settings.path(settings.paths.overrides_dir),
    ]
    out: list[Path] = []
    for p in sorted(set(wanted), key=lambda p: len(p.parts)):
        p.mkdir(parents=True, exist_ok=True)
        if not any(p.is_relative_to(o) for o in out):
            out.append(p)
    return tuple(out)


def instance(settings: Settings, root: Path | None) -> AsteriskInstance:
    inst = AsteriskInstance(
        name="pbx",
        state_dir=settings.asterisk_dir,
        root=root,
        binds=binds(settings),
        binary=settings.asterisk.binary,
        run_user=settings.service.pbx_user or None,
    )
    return inst


def write_config(settings: Settings, inst: AsteriskInstance) -> list[str]:
    """asterisk.conf and every rendered file; returns the rendered names that changed."""
    inst.write_asterisk_conf()
    return render.write(settings, inst.etc_dir, AMI_EVENTS)


def make_moh(settings: Settings) -> Path:
    """A soft chime loop for callers waiting in the queue (no music files ship here)."""
    folder = settings.state_dir / "moh"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "chime.wav"
    custom = settings.path(settings.paths.custom_prompts_dir) / "moh"
    if custom.is_dir() and any(custom.iterdir()):
        for f in custom.iterdir():
            if f.suffix in (".wav", ".gsm", ".alaw", ".ulaw") and f.is_file():
                shutil.copy2(f, folder / f.name)
        target.unlink(missing_ok=True)
        return folder
    if not target.exists():
        subprocess.run(
            [
                "sox",
                "-n",
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                str(target),
                "synth",
                "0.6",
                "sine",
                "523",
                "synth",
                "0.6",
                "sine",
                "659",
                "pad",
                "0",
                "2.4",
                "vol",
                "0.25",
                "repeat",
                "9",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        prompts.telephone_twins(target)
    make_offer_moh(settings, folder)
    return folder


def make_offer_moh(settings: Settings, moh: Path) -> None:
    """The hold sound of a caller who joins a queue already ``queue_length`` long.

    One folder per language, ``musiconhold.conf``'s class ``hotline-offer-<lang>``:
    the overflow offer first, then the usual hold sound, in a loop.  The
    files are links to the prompt and the hold files, so a regenerated
    prompt is heard at once.
    """
    for lang in LANGUAGES:
        folder = render.offer_moh_dir(settings) / lang
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for src in sorted((settings.prompts_dir / lang).glob("overflow_offer.*")):
            (folder / f"1-offer{src.suffix}").symlink_to(src)
        for src in sorted(moh.iterdir()):
            if src.is_file():
                (folder / f"2-{src.name}").symlink_to(src.resolve())


def migrate(settings: Settings) -> None:
    """Bring the database to the newest schema (alembic upgrade head)."""
    if settings.database.startswith("sqlite:///"):
        Path(settings.database.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    alembic_command.upgrade(alembic_config(settings.database), "head")


def alembic_config(url: str) -> AlembicConfig:
    """Alembic pointed at the ``migrations`` package wherever it is installed
    (a checkout or a wheel: no alembic.ini needed)."""
    import migrations

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).resolve().parent))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    return cfg


def prepare(settings_path: Path | None, *, say=print) -> tuple[Settings, AsteriskInstance]:  # type: ignore[no-untyped-def]
    """Everything up to a runnable system: secrets, Asterisk, prompts, config, database."""
    settings = load_settings(settings_path)
    privilege.ensure_users(settings, say=say)
    ensure_secrets(settings)
    settings = load_settings(settings_path)  # now with the generated secrets
    say("Asterisk: looking for an installed one (>= 20), else building one (first time: minutes)")
    root = asterisk_root(settings, say=say)
    inst = instance(settings, root)
    say("Prompts: generating from config texts (espeak-ng)")
    counts = prompts.generate(settings)
    say(f"  {counts}")
    make_moh(settings)
    changed = write_config(settings, inst)
    say(f"Asterisk configuration written to {inst.etc_dir} ({len(changed)} files changed)")
    migrate(settings)
    say(f"Database ready: {redact(settings.database)}")
    privilege.apply_layout(settings)
    return settings, inst


def redact(url: str) -> str:
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


async def reload(settings: Settings, inst: AsteriskInstance) -> list[str]:
    """Render again and reload, over AMI, only the modules whose files changed.

    Module reloads keep calls up: dialplan, endpoints and queues are swapped
    under running channels (queue members added over AMI are kept).
    """
    make_moh(settings)  # the offer's hold sound follows the prompts
    changed = write_config(settings, inst)
    modules = [RELOAD_MODULES[n] for n in changed if n in RELOAD_MODULES]
    if not modules or not inst.is_running():
        return changed
    ami = AMIClient(
        settings.asterisk.ami_host,
        settings.asterisk.ami_port,
        settings.asterisk.ami_user,
        settings.ami_secret.get_secret_value(),
    )
    await ami.start()
    try:
        await ami.wait_logged_in(10)
        # manager.conf last: reloading it may end this very session
        for module in sorted(modules, key=lambda m: m == "manager"):
            await ami.action({"Action": "Reload", "Module": module}, timeout=30)
    finally:
        await ami.stop()
    return changed


# ---- the application process -----------------------------------------------
def pid_file(settings: Settings) -> Path:
    return settings.state_dir / "hotline.pid"


def process_start(pid: int) -> str | None:
    """When the process ``pid`` started (clock ticks since boot, from
    ``/proc/<pid>/stat``), or None if there is no such process.  With the pid,
    this names one process for certain: a pid is reused, a start time at a
    later boot or by a later process is another."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name may hold spaces and parentheses: fields follow the last ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 of proc(5), "starttime"


def write_pid_file(settings: Settings, pid: int) -> None:
    pid_file(settings).write_text(f"{pid} {process_start(pid) or ''}".strip() + "\n")


def app_pid(settings: Settings) -> int | None:
    """The application's pid if the pid file names a process that still runs:
    the same pid *and* the same start time.  After a reboot or a crash the file
    may name a pid that another process now has; that one is never taken for
    ours (nor signalled by ``hotline stop``), and the stale file is removed."""
    path = pid_file(settings)
    try:
        pid_text, _, started = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    now = process_start(pid)
    if now is not None and not started:  # a file written before start times were kept
        with contextlib.suppress(OSError):
            if b"hotline" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    if now is None or now != started:
        path.unlink(missing_ok=True)
        return None
    return pid


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def check_app_user(settings: Settings) -> privilege.Credentials | None:
    """The user the application drops to when started as root (None: it does
    not), once it is certain that user reaches the configuration, the state
    and this Python env and code (a closed folder is named, not met later)."""
    creds = privilege.app_credentials(settings)
    if creds is not None:
        code = [Path(sys.executable), PROJECT_ROOT / "hotline" / "cli.py"]
        privilege.require_reachable(settings, creds, code)
    return creds


def start_app(settings: Settings, timeout: float = 30) -> int:
    """Start `hotline run` in the background; return its pid once it serves FastAGI.

    Started as root, the application runs as ``[service] user`` (with
    Asterisk's group, umask 0007), as its systemd unit does: what needs root
    (Asterisk's mounts, owners and modes: ``privilege.apply_layout``) the
    caller has done before.
    """
    pid = app_pid(settings)
    if pid:
        return pid
    creds = check_app_user(settings)
    # absolute: the process runs in the home, whatever directory we were called from
    config = settings.config_path or config_path()
    log_dir = settings.state_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "hotline.cli", "--config", str(config), "run"]
    with (log_dir / "hotline.log").open("ab") as out:
        if creds is not None:
            os.fchown(out.fileno(), creds.uid, creds.gid)
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(settings.home),
            # started as root: the application's user, with Asterisk's group
            user=creds.uid if creds else None,
            group=creds.gid if creds else None,
            extra_groups=list(creds.groups) if creds else None,
            umask=privilege.UMASK if creds else -1,
            env=creds.env(settings.state_dir) if creds else None,
        )
    write_pid_file(settings, proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hotline run exited ({proc.returncode}); see {log_dir}/hotline.log")
        if _port_open(settings.agi.host, settings.agi.port):
            return proc.pid
        time.sleep(0.2)
    raise RuntimeError(
        f"hotline run did not start serving in {timeout}s; see {log_dir}/hotline.log"
    )


def stop_app(settings: Settings, timeout: float = 15) -> bool:
    pid = app_pid(settings)
    if not pid:
        return False
    started = process_start(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_start(pid) != started:  # gone (or gone and its pid reused)
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file(settings).unlink(missing_ok=True)
    return True
