"""The systemd units as `hotline systemd` writes them pass `systemd-analyze
verify` (unknown keys, sections, commands that do not exist all show)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from core.settings import load_settings
from hotline import system
from hotline.units import UNITS, render_units
from tests.helpers import EXAMPLE, deterministic_env, settings_in


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_units_verify_and_name_this_home(tmp_path):
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["database_url"] = "postgresql://hotline@127.0.0.1/hotline"
    settings = settings_in(tmp_path / "home", tomli_w.dumps(cfg))
    pid_file = system.instance(settings, None).pid_path
    units = render_units(settings, Path(sys.executable).parent, pid_file)
    assert sorted(units) == sorted(UNITS)
    out = tmp_path / "units"
    out.mkdir()
    for name, text in units.items():
        (out / name).write_text(text)
    # templates are verified through an instance of each
    paths = [
        out / "hotline-asterisk.service",
        out / "hotline.service",
        out / "hotline-worker@1.service",
        out / "hotline-panel@8081.service",
    ]
    shutil.copy(out / "hotline-worker@.service", paths[2])
    shutil.copy(out / "hotline-panel@.service", paths[3])
    done = subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        # outside a booted systemd, the units it names as dependencies are unknown
        if line.strip() and "not found" not in line and "Failed to" not in line
    ]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr

    app = units["hotline.service"]
    home = settings.home
    assert f"Environment=HOTLINE_HOME={home}" in app
    assert (
        f"ExecStart={Path(sys.executable).parent / 'hotline'} --config {settings.config_path} run"
        in app
    )
    assert "Restart=always" in app and "postgresql.service" in app and "redis-server.service" in app
    pbx = units["hotline-asterisk.service"]
    assert f"PIDFile={pid_file}" in pbx and "Type=forking" in pbx and "pbx start" in pbx
    # least privilege: the application's units as its user, in a sandbox that
    # leaves it its state only; Asterisk's stays root for its mounts (no
    # namespace: they must be seen outside), and Asterisk drops by itself
    for name in ("hotline.service", "hotline-worker@.service", "hotline-panel@.service"):
        unit = units[name]
        for line in (
            "User=hotline",
            "SupplementaryGroups=hotline-pbx",
            "UMask=0007",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            f"ReadWritePaths={settings.state_dir}",
            "ProtectHome=yes",
            "PrivateTmp=yes",
        ):
            assert f"\n{line}\n" in unit, (name, line)
    assert f"ExecStartPre=+{Path(sys.executable).parent / 'hotline'} --config" in app
    assert "User=" not in pbx and "ProtectSystem" not in pbx and "PrivateTmp" not in pbx


def test_without_service_users_the_units_keep_root_and_the_sandbox(tmp_path):
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["service"] = {"user": "", "pbx_user": ""}
    cfg["paths"]["recordings_dir"] = str(tmp_path / "audio")
    etc = tmp_path / "etc" / "hotline.toml"
    etc.parent.mkdir()
    etc.write_text(tomli_w.dumps(cfg))
    settings = load_settings(etc, env=deterministic_env({"HOTLINE_HOME": "/home/ops/hotline"}))
    units = render_units(settings, Path("/home/ops/hotline/.venv/bin"), Path("/x.pid"))
    app = units["hotline.service"]
    assert "User=" not in app and "SupplementaryGroups" not in app
    # a home under /home is seen read-only, its state and recordings writable
    assert "\nProtectHome=read-only\n" in app
    assert f"\nReadWritePaths={settings.state_dir} {tmp_path / 'audio'}\n" in app


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate missing")
def test_a_real_logrotate_loses_no_queue_log_entry(tmp_path):
    from callcenter.queue_log import QueueLogReader
    from hotline.units import render_logrotate

    settings = settings_in(tmp_path / "home")
    log_dir = settings.queue_log.parent
    log_dir.mkdir(parents=True)
    (settings.state_dir / "log").mkdir(parents=True)
    line = "1764986400|pbx-{n}.1|t1022-morning|NONE|ENTERQUEUE||0901234567|1\n"
    settings.queue_log.write_text(line.format(n=1))
    reader = QueueLogReader(settings.queue_log, tmp_path / "offset.json")
    entries, offset = reader.read_new()
    reader.commit(offset)
    with settings.queue_log.open("a") as f:  # written after the last read
        f.write(line.format(n=2))

    conf = tmp_path / "hotline.logrotate"
    conf.write_text(render_logrotate(settings, Path(sys.executable).parent))
    conf.chmod(0o644)
    done = subprocess.run(
        ["logrotate", "--force", "--state", str(tmp_path / "lr.state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (log_dir / "queue_log.1").is_file() and settings.queue_log.stat().st_size == 0
    with settings.queue_log.open("a") as f:  # Asterisk reopened its logs
        f.write(line.format(n=3))
    entries, _ = reader.read_new()
    assert [e.callid for e in entries] == ["pbx-2.1", "pbx-3.1"]
