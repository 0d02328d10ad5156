"""The real mail servers of the email tests: a private Dovecot (Debian's
dovecot-imapd) on loopback ports of the lab slot, with a passwd-file user and a
Maildir in a temporary folder (no system service), and an SMTP server that
receives what we send (aiosmtpd, with STARTTLS required and a login).

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
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

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
    shutil.which("dovecot", path="/usr/sbin:/usr/bin") is None or os.geteuid() != 0,
    reason="Debian's dovecot-imapd is not installed (apt-get install dovecot-imapd), or not root",
)


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
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
{capability}
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
    ssl = yes
  }}
}}
"""


class Dovecot:
    """One private Dovecot: started, killed and started again by the test."""

    def __init__(self, folder: Path, cert: Path, key: Path, *, idle: bool = True) -> None:
        self.dir = folder
        self.cert, self.key = cert, key
        self.proc: subprocess.Popen[bytes] | None = None
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        self.home = folder / "home" / USER
        self.maildir = self.home / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        for p in [self.home.parent, self.home, *self.home.rglob("*")]:
            os.chown(p, self.uid, self.gid)
        (folder / "users").write_text(
            f"{USER}:{{PLAIN}}{IMAP_PASSWORD}:{self.uid}:{self.gid}::{self.home}\n"
        )
        # without IDLE in the capabilities, the reader must poll
        capability = "" if idle else "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS MOVE"
        self.conf = folder / "dovecot.conf"
        self.conf.write_text(
            CONFIG.format(
                d=folder,
                cert=cert,
                key=key,
                imap=PORTS["imap"],
                imaps=PORTS["imaps"],
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
                with socket.create_connection(("127.0.0.1", PORTS["imaps"]), 0.5):
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
        self.proc = None

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

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


@dataclass
class SmtpSink:
    """aiosmtpd as the receiving side: STARTTLS required before AUTH, AUTH required."""

    cert: Path
    key: Path
    port: int = PORTS["smtp"]
    received: list[Received] = field(default_factory=list)
    controller: Any = None
    refuse: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return "554 5.7.1 refused by the test"
        raw = bytes(envelope.original_content or envelope.content)
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, raw))
        return "250 OK"

    def start(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):  # type: ignore[no-untyped-def]
            ok = (
                isinstance(data, LoginPassword)
                and data.login == SMTP_USER.encode()
                and data.password == SMTP_PASSWORD.encode()
            )
            return AuthResult(success=ok)

        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    async def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} mails received")
            await asyncio.sleep(0.05)
        return self.received


def mail_folder() -> Path:
    """A folder Dovecot's unprivileged processes can reach (pytest's tmp is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="hotline-mail-", dir="/tmp"))
    folder.chmod(0o755)
    return folder
