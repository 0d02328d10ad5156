"""The home does not depend on the current directory, and the pid file names
one process for certain (a reused pid is never taken for the application)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import default_home, load_settings
from hotline import system
from tests.helpers import EXAMPLE, deterministic_env, make_home, settings_in

ROOT = Path(__file__).resolve().parents[2]


def test_the_home_is_never_the_current_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_home({}) == ROOT  # run from the checkout: the checkout
    assert default_home({"HOTLINE_HOME": "h"}) == tmp_path / "h"


def test_a_configuration_in_etc_keeps_its_data_in_the_home(tmp_path) -> None:
    etc = tmp_path / "etc" / "hotline" / "hotline.toml"
    etc.parent.mkdir(parents=True)
    etc.write_text(EXAMPLE.read_text())
    home = tmp_path / "srv"
    s = load_settings(etc, env=deterministic_env({"HOTLINE_HOME": str(home)}))
    assert s.home == home and s.state_dir == home / "var"
    # without HOTLINE_HOME: the default home, never the file's grandparent
    s = load_settings(etc, env=deterministic_env())
    assert s.home == ROOT and s.state_dir != tmp_path / "var"
    # a home laid out as documented still holds its own config/ folder
    s = load_settings(make_home(tmp_path / "h2"), env=deterministic_env())
    assert s.home == tmp_path / "h2"


def test_commands_work_from_any_directory_with_a_home(tmp_path) -> None:
    home = tmp_path / "home"
    make_home(home)
    env = {k: v for k, v in os.environ.items() if k not in ("HOTLINE_CONFIG", "HOTLINE_HOME")}
    env.update(deterministic_env(), PYTHONPATH=str(ROOT))
    for how in (["--home", str(home)], []):
        run_env = dict(env) if how else {**env, "HOTLINE_HOME": str(home)}
        done = subprocess.run(
            [sys.executable, "-m", "hotline.cli", *how, "check"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            env=run_env,
        )
        assert done.returncode == 0, done.stderr
        assert "configuration OK: 2 hotlines" in done.stdout


def test_the_pid_file_names_one_process_by_pid_and_start_time(tmp_path) -> None:
    s = settings_in(tmp_path)
    s.state_dir.mkdir(parents=True)
    assert system.app_pid(s) is None
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        system.write_pid_file(s, proc.pid)
        assert system.app_pid(s) == proc.pid
        # the same pid with another start time: another process (after a reboot)
        system.pid_file(s).write_text(f"{proc.pid} 1\n")
        assert system.app_pid(s) is None
        assert not system.pid_file(s).exists()  # the stale file is gone
        assert system.stop_app(s) is False  # and nothing was signalled
        assert proc.poll() is None
        # an old file with only a pid: taken only if that process is a hotline
        system.pid_file(s).write_text(f"{proc.pid}\n")
        assert system.app_pid(s) is None
        system.write_pid_file(s, proc.pid)
        assert system.stop_app(s) is True
        assert proc.wait(10) is not None
    finally:
        proc.kill()
        proc.wait()
    system.write_pid_file(s, proc.pid)  # a pid that no longer runs
    assert system.app_pid(s) is None


def test_status_lines_for_a_stopped_and_an_unanswering_application() -> None:
    from hotline.status import healthy, render

    stopped = {"asterisk": {"running": False, "version": None}, "application": {"pid": None}}
    assert render(stopped) == "Asterisk: stopped\napplication: stopped"
    assert not healthy(stopped)
    silent = {
        "asterisk": {"running": True, "version": "20.6.0"},
        "application": {"pid": 42, "readiness": {"error": "the panel does not answer (x)"}},
    }
    assert render(silent).splitlines()[1] == (
        "application: running (pid 42), the panel does not answer (x)"
    )
    assert not healthy(silent)


def test_json_logs_are_one_object_a_line(tmp_path) -> None:
    import json

    home = tmp_path / "home"
    make_home(home)
    env = {k: v for k, v in os.environ.items() if k not in ("HOTLINE_CONFIG", "HOTLINE_HOME")}
    env.update(deterministic_env(), PYTHONPATH=str(ROOT), HOTLINE_LOG_FORMAT="json")
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--home", str(home), "-v", "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert records[0]["time"].endswith("+00:00")
