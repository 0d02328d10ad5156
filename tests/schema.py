"""Fresh test databases at the newest schema, copied from one migrated per process.

Running the forty-odd migrations takes about 0.4 s on SQLite and a second on
PostgreSQL, and most tests start from an empty database: over the suite that was
minutes of set-up.  :func:`migrated` runs the real migrations once per test process
and database kind, into a template, and gives each later database a copy of it:
SQLite's backup API, PostgreSQL's ``CREATE DATABASE … TEMPLATE``.  The copy is the
migrations' own result, so a test sees what ``hotline migrate`` makes; the
migrations themselves are tested step by step from empty databases
(``tests/core/test_database.py``'s upgrade, downgrade, upgrade on both kinds, and the
tests of single migrations).

A database that is not empty is migrated as usual.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path

import psycopg
from alembic import command
from sqlalchemy.engine import make_url

from hotline.system import alembic_config

PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# kind -> the template: a file (SQLite) or a database name (PostgreSQL)
_templates: dict[str, str] = {}


def migrated(url: str) -> None:
    """Bring the empty database at ``url`` to the newest schema."""
    if url.startswith("sqlite:///"):
        _sqlite(Path(url.removeprefix("sqlite:///")), url)
    elif url.startswith("postgresql"):
        _postgresql(url)
    else:
        command.upgrade(alembic_config(url), "head")


def _sqlite(path: Path, url: str) -> None:
    if path.exists() and path.stat().st_size > 0:
        command.upgrade(alembic_config(url), "head")
        return
    template = _templates.get("sqlite")
    if template is None:
        folder = tempfile.mkdtemp(prefix="hotline-schema-")
        template = str(Path(folder) / "template.db")
        command.upgrade(alembic_config(f"sqlite:///{template}"), "head")
        _templates["sqlite"] = template
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    source, target = sqlite3.connect(template), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _postgresql(url: str) -> None:
    name = make_url(url).database
    assert name, url
    with psycopg.connect(_plain(url), connect_timeout=10) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        ).fetchone()
    if tables and tables[0]:
        command.upgrade(alembic_config(url), "head")
        return
    template = _templates.get("postgresql")
    if template is None:
        template = f"hotline_schema_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{template}"')
        _templates["postgresql"] = template
        atexit.register(_drop_database, template)
        template_url = make_url(url).set(database=template).render_as_string(hide_password=False)
        command.upgrade(alembic_config(template_url), "head")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def _plain(url: str) -> str:
    """The URL as psycopg takes it (no SQLAlchemy driver name)."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _drop_database(name: str) -> None:
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # the server is gone already: nothing to leave behind
