"""`hotline kb load-examples` and `hotline agencies export|import` in a real process on
SQLite and PostgreSQL: the starter set loads once; an import is a dry run until --apply,
names the line and field of an error and then writes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from core.clock import Clock
from core.db import Database
from tests.helpers import deterministic_env, make_home
from tickets.kb.service import KnowledgeBase
from tickets.kb.starter import ARTICLES

ROOT = Path(__file__).resolve().parents[2]


def hotline(home: Path, url: str, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    config = make_home(home)
    env = {
        **os.environ,
        **deterministic_env({"HOTLINE_DATABASE_URL": url}),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
        env=env,
        input=stdin,
    )


async def test_the_commands_load_examples_and_import_the_directory(database_url, tmp_path):
    done = await asyncio.to_thread(hotline, tmp_path, database_url, "kb", "load-examples")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{len(ARTICLES)} example articles added, 0 already there")
    done = await asyncio.to_thread(hotline, tmp_path, database_url, "kb", "load-examples")
    assert done.stdout.startswith(f"0 example articles added, {len(ARTICLES)} already there")

    csv_file = tmp_path / "agencies.csv"
    csv_file.write_text(
        "code,parent_code,kind,name,phone,email\n"
        "q1,,district,UBND Quận 1,1022,q1@tphcm.gov.vn\n"
        "q1-p1,q1,ward,UBND Phường 1,,not-an-email\n",
        encoding="utf-8",
    )
    done = await asyncio.to_thread(
        hotline, tmp_path, database_url, "agencies", "import", str(csv_file), "--apply"
    )
    assert done.returncode == 2
    assert "line 3: email must be an email address" in done.stderr
    assert "nothing imported" in done.stderr

    csv_file.write_text(csv_file.read_text().replace("not-an-email", "p1@tphcm.gov.vn"))
    done = await asyncio.to_thread(
        hotline, tmp_path, database_url, "agencies", "import", str(csv_file)
    )
    assert done.returncode == 0, done.stderr
    assert "2 to add, 0 to change, 0 unchanged, 0 with errors" in done.stdout
    assert "dry run: nothing written" in done.stdout
    done = await asyncio.to_thread(hotline, tmp_path, database_url, "agencies", "export")
    assert done.stdout.splitlines()[1:] == []  # the dry run wrote nothing

    done = await asyncio.to_thread(
        hotline,
        tmp_path,
        database_url,
        "agencies",
        "import",
        "-",
        "--apply",
        stdin=csv_file.read_text(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("imported")
    done = await asyncio.to_thread(hotline, tmp_path, database_url, "agencies", "export")
    lines = done.stdout.splitlines()
    assert lines[1].startswith("q1,,district,UBND Quận 1,,1022,q1@tphcm.gov.vn,,1")
    assert lines[2].startswith("q1-p1,q1,ward,UBND Phường 1,")

    # none of the starter set's agency codes was in the directory when it loaded
    db = Database(database_url)
    try:
        found = await KnowledgeBase(db, Clock()).search("tam tru", record=False)
        assert found.hits and all(h.article.example for h in found.hits)
        assert all(h.article.agency_id is None for h in found.hits)
    finally:
        await db.close()
