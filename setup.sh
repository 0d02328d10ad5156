#!/usr/bin/env bash
# Installs what is missing and starts the hotline, on Debian or Ubuntu, as root
# (`sudo ./setup.sh`, or `./setup.sh` where you are root and there is no sudo).
#
#   ./setup.sh              system packages, Python env (requirements.lock),
#                           the system users (hotline, hotline-pbx), Asterisk,
#                           prompts, database, the transcription model when its
#                           site answers; then starts Asterisk and the
#                           application
#   ./setup.sh --no-start   the same without starting
#   ./setup.sh --deps-only  system packages and the Python env with the test
#                           tools (requirements-test.lock): what test.sh needs
#
# Root is for installing and for Asterisk's chroot and bind mounts only: the
# application runs as the system user `hotline` and Asterisk drops to
# `hotline-pbx` (README: "Least privilege"), so this checkout and .venv must
# be where `hotline` can reach them (e.g. /opt/hotline or /srv/hotline, not
# under /root).
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-}"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh needs root (apt-get, chroot and bind mounts for Asterisk): sudo $0 $*" >&2
    echo "(where you are root already, as in a container, run it without sudo)" >&2
    exit 1
fi

# --- system packages --------------------------------------------------------
packages=(python3 python3-venv python3-dev gcc espeak-ng sox libsox-fmt-all ffmpeg ca-certificates
          redis-server kannel fonts-dejavu-core)
# The test suite drives the panel in Debian's Chromium (no browser download)
# and checks the monitoring kit with promtool (Debian's prometheus) and
# fail2ban-regex (Debian's fail2ban). The HTTP benchmarks (bench/public_reads.py,
# bench/ticket_reads.py) load with Debian's wrk.
# The SMS tests speak SMPP through a real Kannel (kannel-extras: Kannel's own test tools).
# The leaders' PDF reports are read back with poppler's pdftotext.
# The email tests read a real IMAP server and send to a real SMTP server: a private
# Dovecot (dovecot-imapd) and a private Postfix per test, never the distribution's services.
[ "$mode" = "--deps-only" ] && packages+=(chromium prometheus fail2ban logrotate wrk kannel-extras
                                          poppler-utils dovecot-imapd postfix)
have_asterisk=""
if command -v asterisk >/dev/null 2>&1; then
    major=$(asterisk -V 2>/dev/null | sed -n 's/^Asterisk \([0-9]*\).*/\1/p')
    [ "${major:-0}" -ge 20 ] && have_asterisk=yes
fi
if [ -n "$have_asterisk" ] && command -v systemctl >/dev/null 2>&1 \
        && systemctl is-active --quiet asterisk 2>/dev/null; then
    echo "warning: the distribution's own Asterisk service is running and holds SIP port 5060;" >&2
    echo "         the hotline runs its own instance: 'systemctl disable --now asterisk'" >&2
fi
if [ -z "$have_asterisk" ]; then
    # Without an Asterisk >= 20 installed, `hotline setup` builds one in a chroot.
    packages+=(debootstrap debian-archive-keyring)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "Installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Postfix is for the tests' private instances: no system-wide configuration
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Kannel (SMS, off until [sms] enabled = true): the hotline runs its own bearerbox
# and smsbox from var/kannel/kannel.conf; the distribution's service (a bearerbox
# and a wapbox on /etc/kannel/kannel.conf, holding ports 13000-13001) must not run.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet kannel 2>/dev/null; then
    say "Disabling the distribution's Kannel service (the hotline runs its own)"
    systemctl disable --now kannel >/dev/null 2>&1 || true
fi
# Dovecot and Postfix (installed for the email tests only: the hotline uses the
# city's own mail servers): the distribution's services would hold ports 25, 143, 993.
for svc in dovecot postfix; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet "$svc" 2>/dev/null; then
        say "Disabling the distribution's $svc service (the email tests run their own)"
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done

# --- Redis (sessions, screen-pops, live states) --------------------------------
# Debian starts it under systemd; where there is no init (containers) start it here.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    say "Starting Redis on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir /var/lib/redis \
        --logfile /var/log/redis/hotline.log >/dev/null
    for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# --- Python environment -----------------------------------------------------
# Exactly the versions in the lock files (./lock.sh writes them; README:
# "Dependencies"): requirements.lock to run, requirements-test.lock (the same
# pins plus the test tools) for --deps-only, which test.sh uses.
python=python3
if [ ! -x .venv/bin/python ]; then
    say "Creating the Python environment (.venv)"
    "$python" -m venv .venv
fi
lock=requirements.lock
[ "$mode" = "--deps-only" ] && lock=requirements-test.lock
stamp=.venv/.installed-$(cat "$lock" pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    say "Installing the hotline package and the versions in $lock"
    .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r "$lock"
    # the lock holds the build backend too: no unpinned download to build the package
    .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    rm -f .venv/.installed-*
    touch "$stamp"
fi

[ "$mode" = "--deps-only" ] && exit 0

# --- the hotline ------------------------------------------------------------
say "Preparing the hotline (users, configuration, Asterisk, prompts, database)"
if [ "$mode" = "--no-start" ]; then
    exec .venv/bin/hotline setup --no-start
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    # systemd runs: Asterisk and the application as units, started at boot and
    # restarted when they fail (see `hotline systemd --help`)
    .venv/bin/hotline setup --no-start
    # one started by hand before (without the units) would hold the ports
    systemctl is-active --quiet hotline.service || .venv/bin/hotline stop >/dev/null
    say "Installing and starting the systemd units (hotline-asterisk, hotline)"
    .venv/bin/hotline systemd --output /etc/systemd/system --enable
else
    # no init (a container): Asterisk and the application daemonise themselves
    .venv/bin/hotline setup
fi
if [ -d /etc/logrotate.d ]; then
    .venv/bin/hotline logrotate --output /etc/logrotate.d/hotline >/dev/null
fi
say "Done. '.venv/bin/hotline status' (as root) shows what runs; README.md says how to connect phones."
