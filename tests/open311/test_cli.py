"""`hotline open311-key issue|revoke|list` in a real process, on both databases; the key it
prints is accepted by a real Open311 server until it is revoked."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from accounts.apikeys import ApiKeyService
from core.clock import Clock
from core.db import Database
from tests.helpers import EXAMPLE, ROOT, deterministic_env, make_home
from tests.open311.conftest import start_server, stop_server
from tests.open311.test_post import GOOD


async def hotline(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **deterministic_env(), "PYTHONPATH": str(ROOT)}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hotline.cli", "open311-key", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent.parent,
        env=env,
    )


async def test_issue_list_revoke_from_the_command_line(
    db: Database, database_url: str, tmp_path: Path
):
    url = database_url
    text = EXAMPLE.read_text().replace(
        'database_url = "sqlite:///var/hotline.db"', f'database_url = "{url}"', 1
    )
    assert url in text
    config = make_home(tmp_path / "home", text)

    done = await hotline(config, "issue", "Ứng dụng Quận 3")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    key_id = re.fullmatch(r"([0-9a-f]{12})\.[\w-]{40,}", key).group(1)

    srv = await start_server(db, tmp_path / "server")
    try:
        status, body, _ = await srv.post("/requests.json", {**GOOD, "api_key": key})
        assert status == 201, body

        listed = await hotline(config, "list")
        assert listed.returncode == 0
        [line] = [ln for ln in listed.stdout.splitlines() if key_id in ln]
        assert "active" in line and "Ứng dụng Quận 3" in line and "(command line)" in line
        assert "last used never" not in line
        assert key.split(".")[1] not in listed.stdout  # the secret is never shown again

        revoked = await hotline(config, "revoke", key_id)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        status, _, _ = await srv.post("/requests.json", {**GOOD, "api_key": key})
        assert status == 403
        again = await hotline(config, "revoke", key_id)
        assert again.returncode == 2 and "already revoked" in again.stderr
        unknown = await hotline(config, "revoke", "ffffffffffff")
        assert unknown.returncode == 2 and "key_id" in unknown.stderr
    finally:
        await stop_server(srv)
    events = await ApiKeyService(db, Clock()).events(
        (await ApiKeyService(db, Clock()).list())[0].id
    )
    assert [e.action for e in events] == ["issued", "revoked"]
    assert all(e.actor_name.endswith("(command line)") for e in events)
