#!/usr/bin/env bash
# Runs the whole test suite: the lock check, lint, dependency rules, unit tests,
# the wheel install test, and the integration tests through a real Asterisk
# (PBX + carrier), SQLite and PostgreSQL.  As root (or with sudo):
#
#   ./test.sh               everything
#   ./test.sh tests/core    any pytest arguments
#   HOTLINE_TEST_WORKERS=0 ./test.sh   in one process (default: two workers)
set -euo pipefail
cd "$(dirname "$0")"

./setup.sh --deps-only
# pyproject.toml and the lock files must agree, and the venv hold what the lock pins
.venv/bin/python tools/lockcheck.py --installed requirements-test.lock

# PostgreSQL for the database tests: the one given, a local one with trust on
# 127.0.0.1, or a local cluster reached over its socket as a role made for us.
if [ -z "${HOTLINE_TEST_PG:-}" ] && ! .venv/bin/python - <<'PY' 2>/dev/null
import psycopg; psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()
PY
then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='root'\"" | grep -q 1 \
        || su postgres -c "createuser -s root"
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
        || su postgres -c "createdb -O root test"
    export HOTLINE_TEST_PG="postgresql://root@/test?host=/var/run/postgresql"
fi

.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache | tail -3
.venv/bin/mypy
# Two workers (pytest-xdist), each with a lab of its own (tests/lab.py gives
# worker gwN the lab slot HOTLINE_LAB_SLOT+N): most of the suite's time is real
# calls waiting on real timers.  A file's tests stay together in one worker.
# HOTLINE_TEST_WORKERS=0 runs everything in this one process.
exec .venv/bin/pytest -n "${HOTLINE_TEST_WORKERS:-2}" --dist loadfile "$@"
