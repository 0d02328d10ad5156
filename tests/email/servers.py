"""The real mail servers of the email tests: a private Dovecot (Debian's
dovecot-imapd) on loopback ports of the lab slot, with a passwd-file user and a
Maildir in a temporary folder (no system service), and a private Postfix
(Debian's postfix, its own configuration directory, queue and log) that
receives what we send: STARTTLS required, then a login checked by that
Dovecot (Postfix's usual "dovecot" SASL), then delivered into a Maildir the
test reads.

Why not aiosmtpd: it needs ``atpublic``, whose module is named ``public``, the
name of our public-site package; installed in the venv it shadows ours.

Mail reaches the mailbox as a local delivery agent puts it there: a file
written into ``Maildir/tmp`` then renamed into ``Maildir/new``; Dovecot finds it
(and tells an IDLE client at once).  The servers' certificate is made here by
``openssl`` for 127.0.0.1; the settings trust it through ``email.ca_file``.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

SLOT = int(os.environ.get("HOTLINE_LAB_SLOT", "0")) + int(
    os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0
)
BASE = 23800 + 100 * SLOT
PORTS = {"imap": BASE, "imaps": BASE + 1, "smtp": BASE + 2, "panel": BASE + 3}
USER = "hotline"
IMAP_PASSWORD = "imap-secret"
SMTP_USER = "hotline-out"
SMTP_PASSWORD = "smtp-secret"

needs_dovecot = pytest.mark.skipif(
    shutil.which("dovecot", path="/usr/sbin:/usr/bin") is None
    or shutil.which("postfix", path="/usr/sbin:/usr/bin") is None
    or os.geteuid() != 0,
    reason="Debian's dovecot-imapd and postfix are not installed (setup.sh --deps-only), "
    "or not root",
)
#: a recipient our Postfix refuses (a server's refusal, for the tests)
REFUSED = "refused@example.org"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key), by openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
# the port and the protection of each login in the log: a test reads them there
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l lport=%{{lport}} mpid=%e %c
ssl = {ssl}
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
{capability}
service auth {{
  # Postfix asks this Dovecot whether an SMTP login is right
  unix_listener {d}/postfix-auth {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = {ssl}
  }}
}}
"""


class Dovecot:
    """One private Dovecot: started, killed and started again by the test."""

    def __init__(
        self, folder: Path, cert: Path, key: Path, *, idle: bool = True, tls: bool = True
    ) -> None:
        self.dir = folder
        self.cert, self.key = cert, key
        self.proc: subprocess.Popen[bytes] | None = None
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        (folder / "state").mkdir(exist_ok=True)
        self.home = folder / "home" / USER
        self.maildir = self.home / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        for p in [self.home.parent, self.home, *self.home.rglob("*")]:
            os.chown(p, self.uid, self.gid)
        (folder / "users").write_text(
            f"{USER}:{{PLAIN}}{IMAP_PASSWORD}:{self.uid}:{self.gid}::{self.home}\n"
            f"{SMTP_USER}:{{PLAIN}}{SMTP_PASSWORD}:{self.uid}:{self.gid}::{self.home}\n"
        )
        # without IDLE in the capabilities, the reader must poll
        capability = "" if idle else "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS MOVE"
        # without TLS: no STARTTLS offered on the IMAP port, no IMAPS port at all
        self.tls = tls
        self.conf = folder / "dovecot.conf"
        self.conf.write_text(
            CONFIG.format(
                d=folder,
                cert=cert,
                key=key,
                imap=PORTS["imap"],
                imaps=PORTS["imaps"] if tls else 0,
                ssl="yes" if tls else "no",
                capability=capability,
            )
        )
        self._n = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.conf)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err} {self.log()[-2000:]}")
            try:
                port = PORTS["imaps"] if self.tls else PORTS["imap"]
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen: {self.log()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole server (master, login and imap processes): a crash."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
        # its imap processes were in the same session; nothing of it may answer
        time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()
            return
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logins(self) -> list[str]:
        """The log's lines of successful logins (``lport=``, then ``TLS`` or ``secured``)."""
        return [line for line in self.log().splitlines() if "imap-login: Info: Login: " in line]

    def deliver(self, raw: bytes) -> str:
        """Put one mail in the mailbox as a delivery agent does; its file name."""
        self._n += 1
        name = f"{time.time():.6f}.{uuid.uuid4().hex[:8]}_{self._n}.test"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        tmp.rename(self.maildir / "new" / name)
        return name

    def flags(self) -> dict[str, str]:
        """Each mail's flags as Dovecot keeps them in its file name (``S``: \\Seen)."""
        out: dict[str, str] = {}
        for sub in ("new", "cur"):
            for p in (self.maildir / sub).iterdir():
                base, _, info = p.name.partition(":2,")
                out[base] = info
        return out

    def unseen(self) -> int:
        return sum("S" not in f for f in self.flags().values())


@dataclass
class Received:
    sender: str
    rcpts: list[str]
    message: EmailMessage
    raw: bytes


MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {q}/spool
data_directory = {q}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test
mydomain = test
myorigin = mx.test
mydestination =
relay_domains =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = {d}/maillog
maillog_file_prefixes = /tmp, /var, /dev/stdout
biff = no
smtpd_banner = mx.test ESMTP
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {d}/postfix-auth
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
    check_recipient_access inline:{{ {{ {refused} = REJECT refused by the test }} }},
    permit_sasl_authenticated, reject
virtual_mailbox_domains = example.org example.net
virtual_mailbox_base = {d}/sent
virtual_mailbox_maps = static:all/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""

MASTER_CF = """\
{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """A private Postfix as the receiving side of what the hotline sends."""

    def __init__(self, folder: Path, cert: Path, key: Path, port: int = PORTS["smtp"]) -> None:
        self.dir = folder / "postfix"
        self.dir.mkdir()
        self.port = port
        nobody = pwd.getpwnam("nobody")
        self.sent = folder / "sent"
        (self.sent / "all").mkdir(parents=True)
        for p in (self.sent, self.sent / "all"):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        (self.dir / "main.cf").write_text(
            MAIN_CF.format(
                d=folder,
                cert=cert,
                key=key,
                refused=REFUSED,
                uid=nobody.pw_uid,
                gid=nobody.pw_gid,
                q=folder / "postfix-queue",
            )
        )
        (self.dir / "master.cf").write_text(MASTER_CF.format(port=f"127.0.0.1:{port}"))
        # the map types Debian builds as plugins are listed there
        dynamic = Path("/etc/postfix/dynamicmaps.cf")
        if dynamic.exists():
            shutil.copy(dynamic, self.dir / "dynamicmaps.cf")
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["postfix", "-c", str(self.dir), *args], capture_output=True, text=True, timeout=60
        )

    def start(self) -> None:
        # the queue (root's) and the data folder (postfix's); check makes the rest
        queue = self.folder / "postfix-queue"
        (queue / "spool").mkdir(parents=True, exist_ok=True)
        (queue / "data").mkdir(exist_ok=True)
        os.chown(queue / "data", pwd.getpwnam("postfix").pw_uid, -1)
        done = self._postfix("check")
        if done.returncode != 0:
            raise RuntimeError(f"postfix check: {done.stderr}")
        self.proc = subprocess.Popen(
            ["postfix", "-c", str(self.dir), "start-fg"],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self._close_pipe()
                raise RuntimeError(f"postfix exited: {err} {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix did not listen: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self._postfix("stop")
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._close_pipe()
        self.proc = None

    def _close_pipe(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def received(self) -> list[Received]:
        """What Postfix delivered, oldest first (its Delivered-To, Return-Path kept)."""
        files: list[Path] = []
        for sub in ("new", "cur"):
            folder = self.sent / "all" / sub
            if folder.is_dir():
                files.extend(folder.iterdir())
        out = []
        for f in sorted(files, key=lambda p: p.stat().st_mtime_ns):
            raw = f.read_bytes()
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            # (a long header arrives folded: its value may start with a space)
            sender = str(msg.get("Return-Path", "")).strip("<>")
            rcpts = [str(msg.get("Delivered-To", ""))]
            out.append(Received(sender, rcpts, msg, raw))
        return out

    async def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            got = await asyncio.to_thread(self.received)
            if len(got) >= count:
                return got
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{len(got)} of {count} mails delivered; log: {self.log()[-1500:]}"
                )
            await asyncio.sleep(0.1)


def mail_folder() -> Path:
    """A folder Dovecot's unprivileged processes can reach (pytest's tmp is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="hotline-mail-", dir="/tmp"))
    folder.chmod(0o755)
    return folder
