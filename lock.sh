#!/usr/bin/env bash
# Writes the lock files from pyproject.toml: every Python package the hotline
# installs, at one version each, with the hashes of its files.
#
#   ./lock.sh                          keep every pin that still fits; add what is new
#   ./lock.sh --upgrade                every package to today's newest release
#   ./lock.sh --upgrade-package NAME   one package (repeat for more)
#
#   requirements.lock       what `setup.sh` installs to run the hotline
#   requirements-test.lock  the same versions, plus the test tools (`test.sh`)
#
# One lock serves every platform and Python >= 3.11 (uv's universal resolution
# writes markers such as `; python_full_version >= '3.13'`).  After a refresh,
# run the whole suite (./test.sh) before committing the new locks.
set -euo pipefail
cd "$(dirname "$0")"

uv=.venv/bin/uv
if [ ! -x "$uv" ]; then
    echo "lock.sh: $uv is missing: run ./setup.sh --deps-only first (it installs uv from the test lock)" >&2
    exit 1
fi
export UV_PYTHON_DOWNLOADS=never

# [build-system] requires: setup.sh builds the package without isolation, so
# the build backend is installed from the lock too.
build=$(.venv/bin/python -c 'import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
common=(--universal --python-version 3.11 --generate-hashes --quiet
        --custom-compile-command ./lock.sh)

printf '%s\n' "$build" | "$uv" pip compile pyproject.toml - "${common[@]}" "$@" \
    -o requirements.lock
printf '%s\n' "$build" | "$uv" pip compile pyproject.toml - --extra test --group lock \
    -c requirements.lock "${common[@]}" "$@" -o requirements-test.lock

.venv/bin/python tools/lockcheck.py
git diff --stat -- requirements.lock requirements-test.lock 2>/dev/null || true
