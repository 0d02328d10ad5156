"""The lock check: pyproject.toml and the lock files must say the same thing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from tests.helpers import ROOT
from tools import lockcheck


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", lockcheck.RUNTIME_LOCK, lockcheck.TEST_LOCK):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_the_committed_locks_agree_with_pyproject() -> None:
    assert lockcheck.check() == []
    assert lockcheck.main([]) == 0


def test_every_runtime_pin_has_hashes_and_markers_are_read() -> None:
    pins = lockcheck.read_lock(ROOT / lockcheck.RUNTIME_LOCK)
    names = {p.name for p in pins}
    assert {"aiohttp", "numpy", "setuptools", "tomlkit", "audioop-lts"} <= names
    assert all(p.hashes > 0 for p in pins)
    audioop = next(p for p in pins if p.name == "audioop-lts")
    assert not audioop.applies({"python_full_version": "3.11.2", "python_version": "3.11"})
    assert audioop.applies({"python_full_version": "3.13.5", "python_version": "3.13"})


def test_a_raised_floor_without_a_new_lock_is_named(project: Path) -> None:
    edit(project / "pyproject.toml", '"aiohttp>=3.9"', '"aiohttp>=99"')
    problems = lockcheck.check(project)
    assert len(problems) == 2  # both locks
    assert re.match(
        r"requirements\.lock: pyproject.toml asks for aiohttp>=99, the lock pins aiohttp==",
        problems[0],
    )


def test_a_new_dependency_without_a_new_lock_is_named(project: Path) -> None:
    edit(project / "pyproject.toml", '"tomli-w>=1.0",', '"tomli-w>=1.0",\n    "pyfiglet>=1",')
    assert lockcheck.check(project) == [
        "requirements-test.lock: pyfiglet>=1 is asked for by pyproject.toml but not locked"
    ]


def test_a_pin_without_hashes_and_locks_that_differ_are_named(project: Path) -> None:
    text = (project / lockcheck.TEST_LOCK).read_text()
    start = text.index("\njinja2==")
    end = text.index("\n", text.index("# via", start))
    block = text[start:end]
    version = re.search(r"jinja2==(\S+)", block).group(1)
    (project / lockcheck.TEST_LOCK).write_text(
        text[:start] + "\njinja2==0.1\n    # via hotline" + text[end:]
    )
    problems = lockcheck.check(project)
    assert "requirements-test.lock: jinja2==0.1 has no hash" in problems
    assert (
        f"requirements-test.lock does not pin jinja2=={version} as requirements.lock does"
        in problems
    )
    assert any(
        p.startswith("requirements-test.lock: pyproject.toml asks for jinja2>=") for p in problems
    )


def test_an_environment_that_drifted_from_the_lock_is_named() -> None:
    pins = lockcheck.read_lock(ROOT / lockcheck.TEST_LOCK)
    assert lockcheck.installed_problems(pins) == []
    drifted = [
        lockcheck.Pin(name="pytest", version=Version("1.0"), marker=None, hashes=1),
        lockcheck.Pin(name="no-such-package-here", version=Version("1.0"), marker=None, hashes=1),
    ]
    problems = lockcheck.installed_problems(drifted)
    assert problems[0].startswith("pytest ") and problems[0].endswith("the lock pins 1.0")
    assert problems[1] == "no-such-package-here==1.0 is locked but not installed"
