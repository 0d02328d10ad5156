"""A call from an address the trunk does not list is refused by the real
Asterisk, logged with that address, and the log is what fail2ban's own
Asterisk filter bans on (Debian's /etc/fail2ban/filter.d/asterisk.conf)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.lab import Lab

pytestmark = pytest.mark.asterisk

STRANGER = "127.0.0.9"  # not the carrier (127.0.0.2) nor the phones (127.0.0.3)


def invite(pbx_port: int, to: str, call_id: str, port: int) -> bytes:
    body = (
        f"v=0\r\no=- 1 1 IN IP4 {STRANGER}\r\ns=-\r\nc=IN IP4 {STRANGER}\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
    )
    return (
        f"INVITE sip:{to}@127.0.0.1:{pbx_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {STRANGER}:{port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:intruder@{STRANGER}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{to}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:intruder@{STRANGER}:{port}>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def send_invite(pbx_port: int, to: str, call_id: str) -> str:
    """The final answer (status line) to one INVITE from the stranger's address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((STRANGER, 0))
        s.settimeout(10)
        s.sendto(invite(pbx_port, to, call_id, s.getsockname()[1]), ("127.0.0.1", pbx_port))
        while True:
            data, _ = s.recvfrom(65535)
            status = data.split(b"\r\n", 1)[0].decode()
            if not status.startswith("SIP/2.0 1"):  # skip 100 Trying
                return status


async def test_an_invite_from_an_unlisted_address_is_refused_and_logged(lab: Lab):
    s = lab.settings
    call_id = f"stranger-{uuid.uuid4().hex[:10]}"
    status = await asyncio.to_thread(send_invite, s.asterisk.sip_port, "1022", call_id)
    assert status.split()[1] in ("401", "403"), status  # never rung through to the IVR

    log = s.asterisk_dir / "log" / "messages.log"

    def logged() -> bool:
        return call_id in log.read_text(errors="replace")

    for _ in range(50):
        if await asyncio.to_thread(logged):
            break
        await asyncio.sleep(0.1)
    line = next(ln for ln in log.read_text(errors="replace").splitlines() if call_id in ln)
    assert f"failed for '{STRANGER}:" in line and "No matching endpoint found" in line

    tool, stock = shutil.which("fail2ban-regex"), Path("/etc/fail2ban/filter.d/asterisk.conf")
    if tool is None or not stock.exists():
        pytest.fail("fail2ban missing: ./setup.sh --deps-only installs Debian's fail2ban")
    one = log.with_name("stranger.log")
    one.write_text(line + "\n")
    done = await asyncio.to_thread(
        subprocess.run, [tool, "-o", "ip", str(one), str(stock)], capture_output=True, text=True
    )
    assert done.stdout.split() == [STRANGER], done.stdout + done.stderr
