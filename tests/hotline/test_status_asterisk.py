"""Readiness and ``hotline status`` of the application taking real calls on the
real Asterisk: ready with every check, then not ready when FastAGI stops."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.shifts import on_duty_queue
from hotline import status as st
from hotline import system
from hotline.app import Application
from tests.lab import Lab

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]


async def _status(settings, *more: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "hotline.cli", "status", "--config", str(settings.config_path)]
    return await asyncio.to_thread(
        subprocess.run, [*cmd, *more], capture_output=True, text=True, timeout=60, env=env
    )


async def test_ready_application_and_its_queues_then_a_failing_part(
    carrier: Lab,  # noqa: F811
    app: Application,  # noqa: F811
):
    s = app.settings
    ready = await asyncio.to_thread(st.fetch_readiness, s)
    assert ready["status"] == "ready", ready
    checks = ready["checks"]
    assert {n for n, c in checks.items() if c["ok"]} >= {"database", "redis", "ami", "agi"}
    queue, _ = on_duty_queue(s, "t1022", app.clock.now())
    row = checks["queues"]["queues"][queue]
    on_duty = [a for a in s.agents if a.team == "t1022" and queue.endswith("-" + a.shift)]
    assert row["members"] >= len(on_duty) > 0  # helpers of a handover may be there too
    assert row["waiting"] == 0

    # the CLI, as an operator runs it: this test process is the application
    system.write_pid_file(s, os.getpid())
    try:
        done = await _status(s)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"application: running (pid {os.getpid()}), ready" in done.stdout
        assert "shift on duty:" in done.stdout and queue in done.stdout
        as_json = json.loads((await _status(s, "--json")).stdout)
        assert as_json["application"]["readiness"]["status"] == "ready"

        await app.agi.stop()  # calls could no longer reach the IVR
        done = await _status(s)
        assert done.returncode == 3
        assert "not ready" in done.stdout and "agi" in done.stdout and "FAILING" in done.stdout
    finally:
        system.pid_file(s).unlink(missing_ok=True)
