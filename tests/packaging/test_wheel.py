"""A normal install works, not only the editable one in the checkout.

The wheel is built from the checkout, installed with the runtime lock into a
fresh virtual environment (of this Python, and of Python 3.13 where one is on
the machine), and then used as an operator would, from a folder outside the
checkout: ``hotline --version``, ``init-config``, ``check``, ``migrate`` on
SQLite, and an import of every module.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGES = (
    "core", "agi", "callcenter", "dialplan", "recordings", "queue_stats", "accounts",
    "tickets", "panel", "public", "hotline", "migrations", "qa", "open311", "inbox", "sms", "mail",
)  # fmt: skip
# tracked files inside the packages that are for developers, not for the wheel
DEV_ONLY = {"panel/babel.cfg", "panel/locale/messages.pot", "panel/locale/update.sh"}

IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
names = []
for top in sys.argv[1:]:
    package = importlib.import_module(top)
    names.append(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        # alembic's env.py and revisions run only inside alembic
        if info.name == "migrations.env" or info.name.startswith("migrations.versions."):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
import numpy, pydub  # run-time dependencies of recordings.audio
print(len(names), "modules imported from", package.__file__.rsplit("/", 2)[0])
"""


def _run(cmd: list[str], cwd: Path, timeout: float = 600, **env: str) -> str:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    full_env.update(env)
    done = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # a copy of the tracked files: the build must not depend on what lies around
    src = out / "src"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        path = ROOT / name.decode()
        target = src / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        elif path.is_file():
            shutil.copy2(path, target)
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(src), "-w", str(out)],
        cwd=out,
    )  # fmt: skip
    (found,) = out.glob("hotline-*.whl")
    return found


def test_the_wheel_holds_every_file_of_the_packages(wheel: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    with zipfile.ZipFile(wheel) as z:
        shipped = set(z.namelist())
    missing = sorted(set(tracked) - shipped - DEV_ONLY)
    assert not missing, f"left out of the wheel: {missing}"
    assert "hotline/hotline.example.toml" in shipped
    assert not [n for n in shipped if n.startswith(("tests/", "bench/", "tools/"))]


def _pythons() -> list[object]:
    """This Python, and a Python 3.13 if the machine has one (Debian 13's, or pyenv's)."""
    found = [pytest.param(sys.executable, id=f"python{sys.version_info[0]}.{sys.version_info[1]}")]
    if sys.version_info[:2] != (3, 13):
        candidates = [
            "/usr/bin/python3.13",
            *glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")),
        ]
        usable = [c for c in candidates if os.access(c, os.X_OK)]
        found.append(
            pytest.param(usable[0], id="python3.13")
            if usable
            else pytest.param(
                None,
                id="python3.13",
                marks=pytest.mark.skip(reason="no Python 3.13 on this machine"),
            )
        )
    return found


@pytest.mark.timeout(900)
@pytest.mark.parametrize("python", _pythons())
def test_the_wheel_installs_with_the_lock_and_runs(
    python: str, wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run([python, "-m", "venv", str(venv)], cwd=tmp_path)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    _run([*pip, "--require-hashes", "-r", str(ROOT / "requirements.lock")], cwd=tmp_path)
    _run([*pip, "--no-deps", str(wheel)], cwd=tmp_path)
    hotline = str(venv / "bin" / "hotline")
    work = tmp_path / "elsewhere"  # not the checkout: nothing may come from it
    work.mkdir()

    assert _run([hotline, "--version"], cwd=work).startswith("hotline 0.")
    config = work / "config" / "hotline.toml"
    _run([hotline, "init-config", "--config", str(config)], cwd=work)
    out = _run([hotline, "check", "--config", str(config)], cwd=work)
    assert "configuration OK: 2 hotlines" in out
    _run([hotline, "migrate", "--config", str(config)], cwd=work)
    with sqlite3.connect(work / "var" / "hotline.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"calls", "tickets", "alembic_version"} <= tables

    out = _run([str(venv / "bin" / "python"), "-c", IMPORT_EVERYTHING, *PACKAGES[:-1]], cwd=work)
    assert str(venv) in out, out
    assert int(out.split()[0]) > 80, out
