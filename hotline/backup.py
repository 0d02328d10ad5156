"""``hotline backup`` and ``hotline restore``: one archive that brings a hotline back.

A backup is a ``.tar.gz`` (mode 0600: it holds the secrets) with

- ``database.sqlite`` (SQLite's online backup API: a consistent copy while
  the application writes) or ``database.pgdump`` (``pg_dump`` custom format,
  taken in the snapshot the row counts were read in);
- ``config/hotline.toml`` and the site overrides folder, ``secrets.toml``;
- ``recordings.csv``: every recording file the calls name, with its size and
  whether it was there (the audio itself only with ``--with-audio``: it is
  large and usually copied apart, by rsync or the storage's own snapshots);
- ``manifest.json``: when, which version and schema, the row count of every
  table, and a SHA-256 of each file above.

Restoring checks every hash first, refuses a database that holds data
(unless ``--force``), loads the copy, brings the schema to this version's
(``alembic upgrade head``) and compares the row counts with the manifest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from callcenter.recording_files import mixed_file, side_files
from core.db import sync_url
from core.settings import Settings, secrets_path

FORMAT = 1
# tables whose rows are counted in the manifest and compared after a restore
COUNTED = (
    "calls",
    "tickets",
    "ticket_events",
    "transcripts",
    "transcript_segments",
    "users",
    "agencies",
    "callbacks",
    "voice_messages",
    "queue_events",
    "recording_access",
)


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass
class Restored:
    archive: Path
    counts: dict[str, int]
    recordings: int
    recordings_missing: list[str] = field(default_factory=list)


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def _sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError(f"not a database file: {url}")
    return Path(path)


def _libpq(url: str) -> str:
    """The URL as pg_dump / pg_restore take it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _counts(conn: Connection) -> dict[str, int]:
    """Rows per table of :data:`COUNTED` (table names are ours, never input)."""
    present = set(sa.inspect(conn).get_table_names())
    return {
        t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
        for t in COUNTED
        if t in present
    }


def _revision(conn: Connection) -> str | None:
    if "alembic_version" not in sa.inspect(conn).get_table_names():
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found: install PostgreSQL's client (apt-get install postgresql-client)"
        )
    return path


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {done.stderr.strip() or done.returncode}")


# ---- backup --------------------------------------------------------------------


def _dump_database(url: str, out: Path) -> tuple[str, dict[str, int], str | None]:
    """Copy the database into ``out``; (file name, row counts, schema revision),
    the counts read from the very copy (SQLite) or the dump's snapshot (PostgreSQL)."""
    if _kind(url) == "sqlite":
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupError(f"no database at {source}: nothing to back up")
        target = out / "database.sqlite"
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)  # online and consistent, WAL included
        finally:
            dst.close()
            src.close()
        engine = sa.create_engine(f"sqlite:///{target}")
        try:
            with engine.connect() as conn:
                return target.name, _counts(conn), _revision(conn)
        finally:
            engine.dispose()
    pg_dump = _tool("pg_dump")
    target = out / "database.pgdump"
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            # pg_dump joins this transaction's snapshot: the counts describe the dump
            conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            counts, revision = _counts(conn), _revision(conn)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    _libpq(url),
                ]
            )
            conn.rollback()
    finally:
        engine.dispose()
    return target.name, counts, revision


def _recordings(settings: Settings) -> list[dict[str, Any]]:
    """Every recording file the calls name: path (relative to the recordings
    folder when inside it), size, and whether it is there."""
    engine = sa.create_engine(sync_url(settings.database))
    try:
        with engine.connect() as conn:
            if "calls" not in sa.inspect(conn).get_table_names():
                return []
            rows = conn.execute(
                sa.text(
                    "SELECT id, recording_base FROM calls "
                    "WHERE recording_base IS NOT NULL ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()
    root = settings.recordings_dir
    out = []
    for call_id, base in rows:
        for name in (mixed_file(base), *side_files(base)):
            assert name is not None
            path = Path(name)
            try:
                shown = str(path.relative_to(root))
            except ValueError:
                shown = str(path)
            exists = path.is_file()
            out.append(
                {
                    "call_id": call_id,
                    "path": shown,
                    "bytes": path.stat().st_size if exists else 0,
                    "present": exists,
                }
            )
    return out


def backup(
    settings: Settings, dest: Path | None = None, *, with_audio: bool = False, version: str = ""
) -> Path:
    """Write a backup archive into ``dest`` (default ``<state>/backups``); its path."""
    dest = dest or settings.state_dir / "backups"
    dest.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    archive = dest / f"hotline-backup-{created:%Y%m%dT%H%M%SZ}.tar.gz"
    with tempfile.TemporaryDirectory(dir=dest, prefix=".backup-") as tmp:
        work = Path(tmp)
        db_file, counts, revision = _dump_database(settings.database, work)
        files = [db_file]
        if settings.config_path and settings.config_path.is_file():
            (work / "config").mkdir()
            shutil.copy2(settings.config_path, work / "config" / "hotline.toml")
            files.append("config/hotline.toml")
        overrides = settings.path(settings.paths.overrides_dir)
        if overrides.is_dir():
            shutil.copytree(overrides, work / "config" / "overrides")
            files += [
                str(p.relative_to(work))
                for p in sorted((work / "config" / "overrides").rglob("*"))
                if p.is_file()
            ]
        secrets = secrets_path(settings.state_dir)
        if secrets.is_file():
            shutil.copy2(secrets, work / "secrets.toml")
            files.append("secrets.toml")
        recordings = _recordings(settings)
        with (work / "recordings.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["call_id", "path", "bytes", "present"])
            w.writeheader()
            w.writerows(recordings)
        files.append("recordings.csv")
        if with_audio:
            for r in recordings:
                if r["present"] and not Path(r["path"]).is_absolute():
                    target = work / "recordings" / r["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(settings.recordings_dir / r["path"], target)
                    files.append(f"recordings/{r['path']}")
        manifest = {
            "format": FORMAT,
            "created": created.isoformat(),
            "version": version,
            "database": _kind(settings.database),
            "schema": revision,
            "counts": counts,
            "recordings": {
                "files": len(recordings),
                "present": sum(r["present"] for r in recordings),
                "bytes": sum(r["bytes"] for r in recordings),
                "audio_included": with_audio,
            },
            "sha256": {name: _sha256(work / name) for name in files},
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        partial = archive.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(work / "manifest.json", "manifest.json")
            for name in files:
                tar.add(work / name, name)
        partial.replace(archive)  # a crash mid-way never leaves a half archive under the name
    return archive


# ---- restore -------------------------------------------------------------------


@contextmanager
def _unpacked(archive: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    if not archive.is_file():
        raise BackupError(f"no such archive: {archive}")
    with tempfile.TemporaryDirectory(prefix="hotline-restore-") as tmp:
        work = Path(tmp)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(work, filter="data")  # no paths outside, no devices
        except (tarfile.TarError, OSError, EOFError) as e:
            raise BackupError(f"{archive} is not a readable backup: {e}") from None
        try:
            manifest = json.loads((work / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BackupError(f"{archive} has no readable manifest: {e}") from None
        if manifest.get("format") != FORMAT:
            raise BackupError(f"{archive}: backup format {manifest.get('format')} is not {FORMAT}")
        for name, digest in manifest["sha256"].items():
            path = work / name
            if not path.is_file() or _sha256(path) != digest:
                raise BackupError(f"{archive}: {name} is missing or damaged (its hash differs)")
        yield work, manifest


def read_manifest(archive: Path) -> dict[str, Any]:
    with _unpacked(archive) as (_, manifest):
        return manifest


def _database_holds_data(url: str) -> bool:
    if _kind(url) == "sqlite" and not _sqlite_path(url).exists():
        return False
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return any(
                conn.execute(sa.text(f"SELECT 1 FROM {t} LIMIT 1")).first()
                for t in ("calls", "tickets", "users")
                if t in set(sa.inspect(conn).get_table_names())
            )
    finally:
        engine.dispose()


def _load_database(url: str, work: Path, manifest: dict[str, Any], force: bool) -> None:
    kind = _kind(url)
    if manifest["database"] != kind:
        raise BackupError(
            f"the backup holds a {manifest['database']} database and the configuration "
            f"names a {kind} one: restore into the same kind (database_url)"
        )
    if _database_holds_data(url) and not force:
        raise BackupError(
            "the target database already holds calls, tickets or users: "
            "restore into an empty one, or add --force to replace it"
        )
    if kind == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
        shutil.copy2(work / "database.sqlite", target)
        return
    cmd = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    if force:
        cmd += ["--clean", "--if-exists"]
    _run([*cmd, f"--dbname={_libpq(url)}", str(work / "database.pgdump")])


def restore(
    archive: Path, home: Path, *, config: Path | None = None, force: bool = False
) -> Restored:
    """Restore ``archive`` into ``home``: configuration and secrets where they
    are missing (or with ``force``), then the database the configuration names."""
    from core.settings import load_settings
    from hotline.system import migrate

    with _unpacked(archive) as (work, manifest):
        config = config or home / "config" / "hotline.toml"
        if (work / "config" / "hotline.toml").is_file() and (force or not config.exists()):
            config.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / "config" / "hotline.toml", config)
        if not config.exists():
            raise BackupError(f"no configuration at {config} and none in the backup")
        settings = load_settings(config, env={**os.environ, "HOTLINE_HOME": str(home)})
        if (work / "config" / "overrides").is_dir():
            overrides = settings.path(settings.paths.overrides_dir)
            shutil.copytree(work / "config" / "overrides", overrides, dirs_exist_ok=True)
        secrets = secrets_path(settings.state_dir)
        if (work / "secrets.toml").is_file() and (force or not secrets.exists()):
            secrets.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / "secrets.toml", secrets)
            secrets.chmod(0o600)
        _load_database(settings.database, work, manifest, force)
        migrate(settings)  # a backup of an older version: its schema brought up to date
        if (work / "recordings").is_dir():
            shutil.copytree(work / "recordings", settings.recordings_dir, dirs_exist_ok=True)
        with (work / "recordings.csv").open(encoding="utf-8") as f:
            listed = list(csv.DictReader(f))
    engine = sa.create_engine(sync_url(settings.database))
    try:
        with engine.connect() as conn:
            counts = _counts(conn)
    finally:
        engine.dispose()
    differ = {t: (n, counts.get(t)) for t, n in manifest["counts"].items() if counts.get(t) != n}
    if differ:
        raise BackupError(f"restored, but the row counts differ from the backup's: {differ}")
    missing = []
    for r in listed:
        path = Path(r["path"])
        path = path if path.is_absolute() else settings.recordings_dir / path
        if r["present"] == "True" and not path.is_file():
            missing.append(str(path))
    return Restored(archive, counts, len(listed), missing)


def describe(restored: Restored) -> str:
    out = io.StringIO()
    out.write(f"restored {restored.archive.name}\n")
    for table, n in restored.counts.items():
        out.write(f"  {table}: {n}\n")
    out.write(f"  recordings listed: {restored.recordings}")
    if restored.recordings_missing:
        out.write(
            f"; {len(restored.recordings_missing)} audio files not in the recordings folder "
            "(copy them back from the audio backup)"
        )
    return out.getvalue()
