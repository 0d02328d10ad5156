"""hotline backup and restore on real SQLite and PostgreSQL: a fresh home gets
the same calls, tickets and transcripts back; a damaged archive and a database
that holds data are refused with a reason."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import tomli_w
from sqlalchemy.engine import make_url

from accounts.identity import Actor
from accounts.models import Role
from accounts.service import AccountService
from core.clock import FakeClock
from core.db import Database
from core.settings import ensure_secrets, load_settings
from hotline.backup import BackupError, backup, read_manifest, restore
from hotline.system import migrate
from recordings.search import TranscriptSearch
from recordings.store import save_transcript
from tests.conftest import PG_ADMIN_URL
from tests.helpers import EXAMPLE, deterministic_env, make_home
from tests.recordings.conftest import T0, add_call
from tickets.queries import TicketQueries
from tickets.service import TicketService

ROOT = Path(__file__).resolve().parents[2]
SEG = [
    {
        "speaker": "citizen",
        "start": 0.0,
        "end": 1.5,
        "text": "ngập nước đường Nguyễn Hữu Cảnh",
        "words": [],
    }
]  # noqa: E501


@pytest.fixture
def second_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database of the same kind: the new machine's."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'var' / 'hotline.db'}"
        return
    name = f"hotline_restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def home_with(home: Path, url: str) -> Path:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["database_url"] = url
    return make_home(home, tomli_w.dumps(cfg))


async def fill(settings) -> dict[str, object]:
    """A call with its recording and transcript, a user and a ticket on the call."""
    migrate(settings)
    db = Database(settings.database)
    try:
        base = settings.recordings_dir / "2026" / "11" / "25" / "pbx-1.1"
        base.parent.mkdir(parents=True)
        for suffix in ("", "-in", "-out"):
            Path(f"{base}{suffix}.wav").write_bytes(b"RIFF" + b"\0" * 100)
        call_id = await add_call(db, "pbx-1.1", base)
        await save_transcript(db, call_id, SEG, model="m", audio_seconds=1.5, now=T0)
        accounts = AccountService(db, settings, FakeClock(T0))
        user = await accounts.create_user(
            None,
            {
                "username": "sup",
                "display_name": "Giám sát",
                "role": "supervisor",
                "password": "mật-khẩu-đủ-dài-1",
            },
        )
        actor = Actor(id=user.id, name="sup", role=Role.SUPERVISOR, agency_id=None)
        ticket = await TicketService(db, settings, FakeClock(T0)).create(
            actor,
            {
                "channel": "phone",
                "domain": "state",
                "topic": "flooding",
                "level": 1,
                "description": "Ngập nước",
                "citizen_phone": "0901234567",
                "citizen_name": "Trần Thị B",
                "guidance": "Đã hướng dẫn",
            },
            call_id=call_id,
        )
        return {"call": call_id, "code": ticket.code}
    finally:
        await db.close()


async def test_backup_then_restore_into_a_fresh_home(database_url, second_url, tmp_path):
    env = deterministic_env()
    old_home = tmp_path / "old"
    old = load_settings(home_with(old_home, database_url), env=env)
    ensure_secrets(old)
    made = await fill(old)

    archive = backup(old, version="test")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds the secrets
    manifest = read_manifest(archive)
    assert manifest["counts"]["calls"] == 1 and manifest["counts"]["tickets"] == 1
    assert manifest["counts"]["transcripts"] == 1
    assert manifest["recordings"] == {
        "files": 3,
        "present": 3,
        "bytes": 312,
        "audio_included": False,
    }

    # the new machine: an empty home whose configuration names an empty database
    new_home = tmp_path / "restored"
    cfg = tomllib.loads((old_home / "config" / "hotline.toml").read_text())
    cfg["database_url"] = second_url
    make_home(new_home, tomli_w.dumps(cfg))
    done = restore(archive, new_home)
    assert done.counts == manifest["counts"]
    assert len(done.recordings_missing) == 3  # audio is backed up apart (no --with-audio)
    new = load_settings(
        new_home / "config" / "hotline.toml",
        env={k: v for k, v in env.items() if k != "HOTLINE_AMI_SECRET"},
    )
    assert new.ami_secret.get_secret_value() == ensure_secrets_value(old_home)
    db = Database(new.database)
    try:
        found = await TranscriptSearch(db).search("Nguyễn Hữu Cảnh")
        assert [h.call_id for h in found] == [made["call"]]
        q = TicketQueries(db, new, FakeClock(T0))
        assert (await q.get_by_code(str(made["code"]))).call_id == made["call"]
    finally:
        await db.close()

    # restoring again over data is refused, and a damaged archive is refused
    with pytest.raises(BackupError, match="already holds"):
        restore(archive, new_home)
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name == "recordings.csv":
                data += b"1,x,0,False\n"
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(BackupError, match="recordings.csv is missing or damaged"):
        restore(damaged, new_home, force=True)


def ensure_secrets_value(home: Path) -> str:
    return tomllib.loads((home / "var" / "secrets.toml").read_text())["ami_secret"]


def test_backup_and_restore_commands(tmp_path):
    home = tmp_path / "h"
    home_with(home, f"sqlite:///{home / 'var' / 'hotline.db'}")
    env = {**os.environ, **deterministic_env(), "PYTHONPATH": str(ROOT), "HOTLINE_HOME": str(home)}
    env.pop("HOTLINE_CONFIG", None)

    def hotline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hotline.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd="/",
        )

    assert hotline("migrate").returncode == 0
    out = hotline("backup", "--to", str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr
    archive = Path(out.stdout.strip())
    assert archive.parent == tmp_path / "b" and archive.name.startswith("hotline-backup-")
    refused = hotline("restore", str(tmp_path / "nothing.tar.gz"))
    assert refused.returncode == 2 and "no such archive" in refused.stderr
    again = hotline("restore", str(archive), "--force")
    assert again.returncode == 0, again.stderr
    assert "restored hotline-backup-" in again.stdout
