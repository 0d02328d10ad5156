"""Checks that the lock files still say what pyproject.toml asks for.

``./lock.sh`` writes ``requirements.lock`` (what ``setup.sh`` installs to run
the hotline) and ``requirements-test.lock`` (the same pins plus the test
tools).  A change to ``pyproject.toml`` without a refreshed lock would install
something other than what was asked for, or fail on a fresh machine; this
check runs first in ``test.sh`` and says what disagrees:

- every requirement of ``pyproject.toml`` (project dependencies, the build
  backend, and for the test lock the ``test`` extra and the ``lock`` group) is
  pinned in its lock at a version the requirement allows;
- every pin of the runtime lock is in the test lock at the same version;
- every pin carries hashes;
- with ``--installed``: what this Python environment has installed is what
  the lock pins for it.

Usage: ``python tools/lockcheck.py [--installed requirements-test.lock]``.
Exit status 1 and one line per problem when something disagrees.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = "requirements.lock"
TEST_LOCK = "requirements-test.lock"
REFRESH = "run ./lock.sh (then ./test.sh) and commit the lock files"
REINSTALL = "run ./setup.sh --deps-only, which installs exactly the test lock"

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(?:;\s*(?P<marker>.+?))?\s*$"
)


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: int

    def applies(self, env: dict[str, str] | None = None) -> bool:
        return self.marker is None or self.marker.evaluate(env)


def read_lock(path: Path) -> list[Pin]:
    """The pins of a ``uv pip compile`` / ``pip-compile`` output file."""
    text = path.read_text()
    entries = re.sub(r"\\\n\s*", " ", text).splitlines()
    pins = []
    for line in entries:
        # comments ("# via ...") and options ("-c ...") stand on lines of their own
        if not line.strip() or line.startswith((" ", "#", "-")):
            continue
        head, *hashes = line.split(" --hash=")
        m = _PIN.match(head.strip())
        if m is None:
            raise ValueError(f"{path.name}: cannot read the line {line[:80]!r}")
        marker = m.group("marker")
        pins.append(
            Pin(
                name=canonicalize_name(m.group("name")),
                version=Version(m.group("version")),
                marker=Marker(marker) if marker else None,
                hashes=len(hashes),
            )
        )
    return pins


def wanted(pyproject: dict, *, test: bool) -> list[Requirement]:
    """The requirements a lock must satisfy."""
    reqs = list(pyproject["project"]["dependencies"])
    reqs += pyproject["build-system"]["requires"]
    if test:
        reqs += pyproject["project"]["optional-dependencies"]["test"]
        reqs += pyproject.get("dependency-groups", {}).get("lock", [])
    return [Requirement(r) for r in reqs]


def problems_of(lock_name: str, pins: list[Pin], reqs: list[Requirement]) -> list[str]:
    out = []
    by_name: dict[str, list[Pin]] = {}
    for p in pins:
        by_name.setdefault(p.name, []).append(p)
        if p.hashes == 0:
            out.append(f"{lock_name}: {p.name}=={p.version} has no hash")
    for r in reqs:
        name = canonicalize_name(r.name)
        found = by_name.get(name)
        if not found:
            out.append(f"{lock_name}: {r} is asked for by pyproject.toml but not locked")
            continue
        for p in found:
            if not r.specifier.contains(p.version, prereleases=True):
                out.append(
                    f"{lock_name}: pyproject.toml asks for {r}, the lock pins {p.name}=={p.version}"
                )
    return out


def installed_problems(pins: list[Pin]) -> list[str]:
    out = []
    for p in pins:
        if not p.applies():
            continue
        try:
            have = Version(metadata.version(p.name))
        except metadata.PackageNotFoundError:
            out.append(f"{p.name}=={p.version} is locked but not installed")
            continue
        if have != p.version:
            out.append(f"{p.name} {have} is installed, the lock pins {p.version}")
    return out


def check(root: Path = ROOT) -> list[str]:
    with (root / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    problems: list[str] = []
    locks = {}
    for name, test in ((RUNTIME_LOCK, False), (TEST_LOCK, True)):
        path = root / name
        if not path.exists():
            problems.append(f"{name} is missing")
            continue
        locks[name] = read_lock(path)
        problems += problems_of(name, locks[name], wanted(pyproject, test=test))
    if len(locks) == 2:
        test_pins = {(p.name, p.version) for p in locks[TEST_LOCK]}
        for p in locks[RUNTIME_LOCK]:
            if (p.name, p.version) not in test_pins:
                problems.append(
                    f"{TEST_LOCK} does not pin {p.name}=={p.version} as {RUNTIME_LOCK} does"
                )
    return problems


def main(argv: list[str]) -> int:
    installed = None
    if argv[:1] == ["--installed"] and len(argv) == 2:
        installed = argv[1]
    elif argv:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check()
    if problems:
        print("The lock files disagree with pyproject.toml:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print(f"To fix: {REFRESH}.", file=sys.stderr)
        return 1
    if installed:
        problems = installed_problems(read_lock(ROOT / installed))
        if problems:
            print(f"This Python environment is not what {installed} pins:", file=sys.stderr)
            for p in problems:
                print(f"  - {p}", file=sys.stderr)
            print(f"To fix: {REINSTALL}.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
