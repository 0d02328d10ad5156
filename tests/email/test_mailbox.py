"""Email through a real Dovecot (IMAP over TLS, IDLE) and a real SMTP server
(aiosmtpd with STARTTLS and a login), on SQLite and PostgreSQL:

- a mail becomes an inbox message with its attachments (kept by id, a refused
  type listed), then a ticket that owns them; the tracking code goes back in
  the citizen's thread, and the citizen's answer joins the ticket by itself;
- an agent's reply arrives threaded (Message-ID, In-Reply-To, References);
- the server killed, or the connection closed, in the middle of a fetch: every
  mail is stored once, and each is marked \\Seen only once stored;
- bad input: a 50 MB mail (kept by its headers, flagged, nothing crashes), a
  forged From (stored as written, never linked by address), HTML with scripts
  (sanitised), a bounce and an auto-reply (never answered), a mail delivered
  twice (one message), a server without IDLE (polled).
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from inbox.exceptions import NotSendable
from inbox.models import Flag, MessageChannel, State
from mail.imap import Fetched
from tests.email.conftest import HOTLINE, PASSWORD, MailLab, eventually, mail, make_lab
from tests.email.servers import REFUSED, needs_dovecot

pytestmark = [needs_dovecot]
FORM = {"domain": "state", "topic": "trees", "level": 2}


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


async def stored(lab: MailLab, count: int, timeout: float = 30):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        rows = [m for m in await lab.messages_in() if m.channel == MessageChannel.EMAIL]
        return rows if len(rows) >= count else None

    return await eventually(check, timeout, what=f"{count} mails stored")


async def test_a_mail_becomes_a_ticket_with_its_attachments_and_the_thread_follows(
    mail_lab: MailLab,
) -> None:
    lab = mail_lab
    raw, mid = mail(
        attachments=[
            ("cay-do.png", "image/png", png()),
            ("virus.exe", "application/x-msdownload", b"MZ" + b"\0" * 100),
        ]
    )
    lab.dovecot.deliver(raw)
    await lab.reader.start()
    [msg] = await stored(lab, 1)
    assert msg.state == State.NEW and msg.citizen == "citizen@example.org"
    assert msg.external_id == mid and msg.team == lab.settings.email_team
    assert "hẻm 5" in msg.body and "virus.exe: type application/x-msdownload" in msg.body
    [photo] = await lab.inbox.files(msg.id)
    assert photo.content_type == "image/png" and photo.original_name == "cay-do.png"
    assert photo.ticket_id is None
    # marked done on the server only now that it is stored
    await eventually(lambda: asyncio.sleep(0, lab.dovecot.unseen() == 0), what="\\Seen")
    assert lab.reader.state["idle"] is True

    # the desk turns it into a ticket: the photo is the ticket's, the code goes back
    _msg, ticket = await lab.inbox.to_ticket(lab.agent, msg.id, FORM)
    assert ticket.channel == "email" and ticket.reporter_email == "citizen@example.org"
    [owned] = await lab.ctx.ticket_queries.attachments(ticket.id)
    assert owned.id == photo.id
    [sent] = await lab.smtp.wait_for(1)
    assert sent.rcpts == ["citizen@example.org"]
    assert sent.message["In-Reply-To"].strip() == mid
    assert mid in sent.message["References"]
    assert sent.message["Subject"] == "Re: Cây đổ chắn đường"
    assert sent.message["Auto-Submitted"] == "auto-generated"
    assert ticket.code in sent.message.get_content()

    # the citizen answers in the thread: it joins the ticket by itself
    answer, _ = mail(
        subject="Re: Cây đổ chắn đường",
        text="Cây vẫn chưa được dọn.",
        headers={
            "In-Reply-To": sent.message["Message-ID"],
            "References": sent.message["References"],
        },
    )
    lab.dovecot.deliver(answer)
    # someone else quotes the code in a new mail: joins it too
    quoting, _ = mail(sender="neighbour@example.net", subject=f"Về mã {ticket.code}")
    lab.dovecot.deliver(quoting)
    rows = await stored(lab, 3)
    joined = [m for m in rows if m.id != msg.id]
    assert {m.state for m in joined} == {State.ATTACHED}
    assert {m.ticket_id for m in joined} == {ticket.id}


async def test_a_reply_arrives_threaded(mail_lab: MailLab) -> None:
    lab = mail_lab
    raw, mid = mail(
        subject="Ngập nước",
        headers={"References": "<older@example.org>"},
    )
    lab.dovecot.deliver(raw)
    await lab.reader.start()
    [msg] = await stored(lab, 1)
    out = await lab.inbox.reply(lab.agent, msg.id, "Chúng tôi đã chuyển tới phường 3.")
    [got] = await lab.smtp.wait_for(1)
    m = got.message
    assert got.sender == HOTLINE and got.rcpts == ["citizen@example.org"]
    assert m["Subject"] == "Re: Ngập nước"
    assert m["In-Reply-To"].strip() == mid
    assert m["References"].split() == ["<older@example.org>", mid]
    assert "Auto-Submitted" not in m  # a person wrote it
    assert m.get_content().strip() == "Chúng tôi đã chuyển tới phường 3."
    out = await lab.inbox.get(out.id)
    assert out.state == State.SENT and out.external_id == m["Message-ID"].strip()
    # a refusal by the server is the reply's state, with the server's words
    refused, _ = mail(sender=REFUSED, subject="Hỏi")
    lab.dovecot.deliver(refused)
    [other] = [m for m in await stored(lab, 2) if m.citizen == REFUSED]
    failed = await lab.inbox.reply(lab.agent, other.id, "Trả lời.")
    assert failed.state == State.FAILED and "refused by the test" in (failed.error or "")


@pytest.mark.parametrize("how", ["kill dovecot", "close the socket"])
async def test_a_connection_lost_mid_fetch_loses_and_duplicates_nothing(
    mail_lab: MailLab, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = mail_lab
    # rounds of 10: the break comes once the first 10 are committed, none flagged,
    # 20 not fetched yet
    monkeypatch.setattr("mail.imap.BATCH_COUNT", 10)
    ids = []
    for i in range(30):
        raw, mid = mail(subject=f"Phản ánh {i}", text=f"Nội dung {i}")
        lab.dovecot.deliver(raw)
        ids.append(mid)
    real_store = lab.intake.store_batch
    calls = 0
    handed = 0

    async def store_then_fail(batch: list[Fetched]):  # type: ignore[no-untyped-def]
        nonlocal calls, handed
        result = await real_store(batch)
        calls += 1
        handed += len(batch)
        if calls == 1:
            # the first 10 stored and committed, not yet marked on the server: the
            # worst moment
            if how == "kill dovecot":
                await asyncio.to_thread(lab.dovecot.kill)
                asyncio.get_running_loop().call_later(
                    1.5, lambda: asyncio.ensure_future(asyncio.to_thread(lab.dovecot.start))
                )
            else:
                assert lab.reader._imap is not None
                lab.reader._imap.protocol.transport.close()
        return result

    lab.reader.store = store_then_fail
    await lab.reader.start()
    rows = await stored(lab, 30, timeout=60)
    await eventually(
        lambda: asyncio.sleep(0, lab.dovecot.unseen() == 0), timeout=30, what="all \\Seen"
    )
    rows = [m for m in await lab.messages_in() if m.channel == MessageChannel.EMAIL]
    assert sorted(m.external_id for m in rows) == sorted(ids)
    assert handed == 40  # the 10 of the broken round were read again, and recognised
    assert lab.reader.state["failures"] >= 1 and lab.reader.state["error"] is None


async def test_a_50_mb_mail_is_kept_by_its_headers_and_nothing_crashes(mail_lab: MailLab) -> None:
    lab = mail_lab
    big, mid = mail(
        subject="Video hiện trường",
        attachments=[("video.mp4", "video/mp4", b"\0" * 50_000_000)],
    )
    small, _ = mail(subject="Sau đó", text="Thư nhỏ sau thư lớn.")
    lab.dovecot.deliver(big)
    lab.dovecot.deliver(small)
    await lab.reader.start()
    rows = await stored(lab, 2, timeout=60)
    [large] = [m for m in rows if m.external_id == mid]
    assert large.flag == Flag.TOO_LARGE and "too large" in large.body
    assert await lab.inbox.files(large.id) == []
    [e] = (await lab.inbox.emails([large.id])).values()
    assert e.subject == "Video hiện trường" and e.size > 50_000_000
    await eventually(lambda: asyncio.sleep(0, lab.dovecot.unseen() == 0), what="\\Seen")


async def test_a_forged_from_is_stored_as_written_and_never_links_by_address(
    mail_lab: MailLab,
) -> None:
    lab = mail_lab
    first, _ = mail(sender="Ông A <a@example.org>")
    lab.dovecot.deliver(first)
    await lab.reader.start()
    [msg] = await stored(lab, 1)
    _m, ticket = await lab.inbox.to_ticket(lab.agent, msg.id, FORM)
    # anyone can write this From: with no code and no thread, it waits on the desk
    forged, _ = mail(sender="Ông A <a@example.org>", subject="Hủy phản ánh", text="Đóng lại đi.")
    lab.dovecot.deliver(forged)
    rows = await stored(lab, 2)
    [second] = [m for m in rows if m.id != msg.id]
    assert second.state == State.NEW and second.ticket_id is None
    assert second.citizen == "a@example.org"
    [e] = (await lab.inbox.emails([second.id])).values()
    assert e.from_header == "Ông A <a@example.org>"
    assert ticket.id != second.ticket_id


async def test_html_with_scripts_is_sanitised_and_shown_safely(mail_lab: MailLab) -> None:
    lab = mail_lab
    html = (
        "<html><head><style>body{display:none}</style><script>alert(1)</script></head>"
        '<body><p onclick="alert(2)">Đường <b>ngập</b> sâu</p>'
        '<img src="https://tracker.example/p.gif" onerror="alert(3)">'
        '<a href="javascript:alert(4)">xem</a> <a href="https://map.example/x">bản đồ</a>'
        '<iframe src="https://evil.example"></iframe><form action="/x"><input></form>'
        "</body></html>"
    )
    raw, _ = mail(html=html, text="")
    lab.dovecot.deliver(raw)
    await lab.reader.start()
    [msg] = await stored(lab, 1)
    [e] = (await lab.inbox.emails([msg.id])).values()
    assert e.html is not None
    for bad in ("script", "alert", "onclick", "onerror", "<img", "iframe", "<form", "style"):
        assert bad not in e.html
    assert "<b>ngập</b>" in e.html and 'href="https://map.example/x"' in e.html
    assert 'rel="noopener noreferrer nofollow"' in e.html
    # the page shows it, under the panel's CSP
    await lab.start_panel()
    assert lab.client is not None
    form = await (await lab.client.get("/login")).text()
    token = re.search(r'name="_csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    r = await lab.client.post(
        "/login",
        data={"_csrf": token, "username": "maildesk", "password": PASSWORD},
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    r = await lab.client.get(f"/messages/{msg.id}")
    page = await r.text()
    assert r.status == 200 and "<b>ngập</b>" in page and "alert(" not in page
    assert "script-src" in r.headers.get("Content-Security-Policy", "")


async def test_bounces_and_auto_replies_are_never_answered(mail_lab: MailLab) -> None:
    lab = mail_lab
    raw, _ = mail()
    lab.dovecot.deliver(raw)
    await lab.reader.start()
    [msg] = await stored(lab, 1)
    out = await lab.inbox.reply(lab.agent, msg.id, "Đã nhận.")
    [sent] = await lab.smtp.wait_for(1)
    bounce = (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: " + HOTLINE + "\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; citizen@example.org\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {sent.message['Message-ID']}\r\nSubject: Re: x\r\n\r\n--B--\r\n"
    ).encode()
    lab.dovecot.deliver(bounce)
    away, _ = mail(
        sender="citizen@example.org",
        subject="Vắng mặt: Cây đổ",
        text="Tôi đang đi công tác.",
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )
    lab.dovecot.deliver(away)
    rows = await stored(lab, 3)
    by_flag = {m.flag: m for m in rows}
    assert by_flag[Flag.BOUNCE].state == State.NO_CONTENT
    assert by_flag[Flag.AUTO_REPLY].state == State.NO_CONTENT
    for flag in (Flag.BOUNCE, Flag.AUTO_REPLY):
        with pytest.raises(NotSendable):
            await lab.inbox.reply(lab.agent, by_flag[flag].id, "Trả lời robot?")
    # the bounce names our reply: it is marked failed
    out = await lab.inbox.get(out.id)
    assert out.state == State.FAILED and (out.error or "").startswith("bounced")
    await asyncio.sleep(1)
    assert len(await asyncio.to_thread(lab.smtp.received)) == 1


async def test_a_mail_delivered_twice_is_one_message(mail_lab: MailLab) -> None:
    lab = mail_lab
    raw, mid = mail()
    lab.dovecot.deliver(raw)
    lab.dovecot.deliver(raw)
    await lab.reader.start()
    await eventually(lambda: asyncio.sleep(0, lab.dovecot.unseen() == 0), what="\\Seen")
    rows = [m for m in await lab.messages_in() if m.channel == MessageChannel.EMAIL]
    assert [m.external_id for m in rows] == [mid]


@pytest.fixture
async def polled_lab(database_url: str, tmp_path: Path) -> AsyncIterator[MailLab]:
    async for lab in make_lab(database_url, tmp_path, idle=False, done_folder="Done"):
        yield lab


async def test_a_server_without_idle_is_polled_and_stored_mail_moved(polled_lab: MailLab) -> None:
    lab = polled_lab
    (lab.dovecot.maildir / ".Done" / "new").mkdir(parents=True)
    for sub in ("cur", "tmp"):
        (lab.dovecot.maildir / ".Done" / sub).mkdir()
    import os

    for p in (lab.dovecot.maildir / ".Done").rglob("*"):
        os.chown(p, lab.dovecot.uid, lab.dovecot.gid)
    os.chown(lab.dovecot.maildir / ".Done", lab.dovecot.uid, lab.dovecot.gid)
    await lab.reader.start()
    await eventually(lambda: asyncio.sleep(0, lab.reader.state["connected"]), what="connected")
    assert lab.reader.state["idle"] is False
    raw, mid = mail()
    lab.dovecot.deliver(raw)
    [msg] = await stored(lab, 1, timeout=20)  # within poll_seconds (5) and a round
    assert msg.external_id == mid

    def moved() -> bool:
        inbox = list((lab.dovecot.maildir / "new").iterdir()) + list(
            (lab.dovecot.maildir / "cur").iterdir()
        )
        done = list((lab.dovecot.maildir / ".Done" / "cur").iterdir()) + list(
            (lab.dovecot.maildir / ".Done" / "new").iterdir()
        )
        return not inbox and len(done) == 1

    await eventually(lambda: asyncio.sleep(0, moved()), what="moved to Done")
