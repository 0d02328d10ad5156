"""Shared helpers of the test suite."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from alembic.config import Config

from callcenter.callbacks import CallbackService
from callcenter.models import Callback
from callcenter.service import CallService, sanitize_caller
from core.bus import Bus
from core.settings import Settings, load_settings
from hotline.system import alembic_config

ROOT = Path(__file__).resolve().parent.parent
# the shared Redis the tests use (each test under a key prefix of its own)
REDIS_URL = "redis://127.0.0.1:6379/0"
EXAMPLE = ROOT / "config" / "hotline.example.toml"


def deterministic_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Secrets from the environment, fixed so rendered files are reproducible."""
    text = EXAMPLE.read_text()
    env = {"HOTLINE_AMI_SECRET": "test-ami-secret"}
    for ext in re.findall(r'^extension = "(\d+)"', text, re.M):
        env[f"HOTLINE_SIP_PASSWORD_{ext}"] = f"pw{ext}"
    env.update(extra or {})
    return env


def make_home(home: Path, config_text: str | None = None) -> Path:
    """A hotline home folder with config/hotline.toml; returns the config path."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = home / "config" / "hotline.toml"
    path.write_text(config_text if config_text is not None else EXAMPLE.read_text())
    return path


def settings_in(home: Path, config_text: str | None = None, **env: str) -> Settings:
    path = make_home(home, config_text)
    return load_settings(path, env=deterministic_env(env))


def replace_block(text: str, old: str, new: str) -> str:
    assert old in text, f"fixture text not found: {old!r}"
    return text.replace(old, new, 1)


def alembic_cfg(url: str) -> Config:
    """Alembic's configuration for the database at ``url`` (the project's migrations)."""
    return alembic_config(url)


async def queued_call(
    calls: CallService,
    uniqueid: str,
    number: str | None,
    *,
    started: datetime,
    name: str | None = None,
    hotline: str = "1022",
    queue: str = "t1022-morning",
    path: str | None = None,
    waited: timedelta = timedelta(0),
) -> datetime:
    """A call as the call path writes it: opened, through the menu when ``path``
    is given, then in ``queue`` ``waited`` after it started.  Returns when it
    joined the queue."""
    caller = sanitize_caller(number, name)
    await calls.open_call(
        uniqueid=uniqueid,
        linkedid=uniqueid,
        hotline_number=hotline,
        caller=caller,
        started_at=started,
        language="vi",
        recording_base=None,
    )
    if path is not None:
        team, shift = queue.rsplit("-", 1)
        await calls.ivr_done(
            uniqueid,
            path=path,
            choice="agent",
            language="vi",
            queue=queue,
            team_id=team,
            shift_id=shift,
        )
    joined = started + waited
    await calls.caller_joined(
        uniqueid=uniqueid,
        linkedid=uniqueid,
        queue=queue,
        hotline_number=hotline,
        caller=caller,
        at=joined,
        recording_base=None,
        route_source="agi",
    )
    return joined


async def requested_callback(
    callbacks: CallbackService, uniqueid: str, number: str, joined_at: datetime | None
) -> Callback:
    """The queued caller ``uniqueid`` asks to be called back on their caller ID, in Vietnamese."""
    return await callbacks.request(
        uniqueid=uniqueid,
        number=number,
        number_source="caller_id",
        language="vi",
        joined_at=joined_at,
    )


def self_signed_cert(folder: Path, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh self-signed certificate (naming ``address``) and its key, made by openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "hotline.crt", folder / "hotline.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-days", "2", "-subj", f"/CN={address}",
            "-addext", f"subjectAltName=IP:{address}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


async def forget_keys(bus: Bus) -> None:
    """Delete what a test left in Redis under its bus's prefix."""
    keys = [k async for k in bus.redis.scan_iter(match=f"{bus.prefix}:*")]
    if keys:
        await bus.redis.delete(*keys)
