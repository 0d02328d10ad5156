"""A mail's fields in the JSON API, read from a real Dovecot and answered through a
real Postfix, on SQLite and PostgreSQL (tests/email/conftest.py):

- a mail on the desk: its subject, sender (as written), Message-ID, HTML as
  sanitised, text and the attachments kept, by id, downloadable with the token;
- an answer through the API arrives threaded, and its own fields say so; the
  message's conversation holds both, as the page shows it;
- a ticket's conversation (a restricted report): the mail, the code sent back,
  the answer and the citizen's answer in the thread, their files served by the
  ticket's own route; refused (403) to a colleague not cleared for it, shown to
  them once the report is not restricted; a mail on another team's desk is 404.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

from PIL import Image

from inbox.models import MessageChannel, State
from tests.email.conftest import HOTLINE, PASSWORD, MailLab, eventually, mail
from tests.email.servers import needs_dovecot

pytestmark = [needs_dovecot]
API = "/api/v1"
HTML = (
    '<p onclick="alert(1)">Cây <b>đổ</b> chắn đường</p><script>alert(2)</script>'
    '<a href="https://map.example/x">bản đồ</a>'
)


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 160, 30)).save(buf, "PNG")
    return buf.getvalue()


async def token(lab: MailLab, username: str) -> dict[str, str]:
    assert lab.client is not None
    r = await lab.client.post(f"{API}/session", json={"username": username, "password": PASSWORD})
    assert r.status == 200, await r.text()
    return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def get(lab: MailLab, path: str, headers: dict[str, str], status: int = 200) -> Any:
    assert lab.client is not None
    r = await lab.client.get(path, headers=headers)
    assert r.status == status, f"{path}: {r.status} {await r.text()}"
    return await r.json()


async def download(lab: MailLab, url: str, headers: dict[str, str]) -> bytes:
    assert lab.client is not None
    r = await lab.client.get(url, headers=headers)
    assert r.status == 200, f"{url}: {r.status} {await r.text()}"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    return await r.read()


async def on_desk(lab: MailLab, count: int) -> list[Any]:
    async def check():  # type: ignore[no-untyped-def]
        rows = [m for m in await lab.messages_in() if m.channel == MessageChannel.EMAIL]
        return rows if len(rows) >= count else None

    return await eventually(check, 30, what=f"{count} mails stored")  # type: ignore[no-any-return]


async def test_a_mail_its_answer_and_a_tickets_conversation_carry_the_email_fields(
    mail_lab: MailLab,
) -> None:
    lab = mail_lab
    photo = png()
    raw, mid = mail(
        sender="Ông Ba <ba@example.org>",
        subject="Cây đổ ở hẻm 5",
        text="Cây đổ chắn đường ở hẻm 5, có người bị thương.",
        html=HTML,
        attachments=[
            ("cay-do.png", "image/png", photo),
            ("virus.exe", "application/x-msdownload", b"MZ" + b"\0" * 64),
        ],
    )
    lab.dovecot.deliver(raw)
    await lab.reader.start()
    [msg] = await on_desk(lab, 1)
    await lab.start_panel()
    desk = await token(lab, "maildesk")

    # -- on the desk: the list and the message carry what the page shows
    listed = await get(lab, f"{API}/messages", desk)
    [item] = [i for i in listed["items"] if i["id"] == msg.id]
    one = await get(lab, f"{API}/messages/{msg.id}", desk)
    assert one == item
    e = one["email"]
    assert e["subject"] == "Cây đổ ở hẻm 5"
    assert e["from_address"] == "ba@example.org" == one["citizen"]
    assert e["from_header"] == "Ông Ba <ba@example.org>"
    assert e["to_address"] == one["service_address"]
    assert e["message_id"] == mid and e["in_reply_to"] is None and e["references"] == []
    assert e["size"] >= len(raw)  # as the server counts it (CRLF line ends)
    assert "<b>đổ</b>" in e["html"] and 'href="https://map.example/x"' in e["html"]
    for bad in ("script", "alert", "onclick"):
        assert bad not in e["html"]
    assert "hẻm 5" in one["body"] and "virus.exe" in one["body"]  # the text; the exe refused
    [kept] = e["attachments"]
    [stored] = await lab.inbox.files(msg.id)
    assert kept == {
        "id": stored.id,
        "filename": "cay-do.png",
        "content_type": "image/png",
        "size": len(photo),
        "sha256": hashlib.sha256(photo).hexdigest(),
        "url": f"/messages/{msg.id}/files/{stored.id}",
    }
    assert await download(lab, kept["url"], desk) == photo

    # -- an answer through the API: threaded under the mail, and its fields say so
    assert lab.client is not None
    r = await lab.client.post(
        f"{API}/messages/{msg.id}/reply", json={"text": "Đã chuyển tới phường."}, headers=desk
    )
    assert r.status == 201, await r.text()
    out = await r.json()
    [got] = await lab.smtp.wait_for(1)
    assert out["direction"] == "out" and out["reply_to_id"] == msg.id
    o = out["email"]
    assert o["subject"] == "Re: Cây đổ ở hẻm 5" == got.message["Subject"]
    assert o["message_id"] == got.message["Message-ID"].strip()
    assert o["in_reply_to"] == mid and o["references"] == [mid]
    assert o["from_address"] == HOTLINE and o["to_address"] == "ba@example.org"
    assert o["from_header"] is None and o["html"] is None and o["attachments"] == []

    # -- the message's conversation, as its page shows it
    thread = await get(lab, f"{API}/messages/{msg.id}/conversation", desk)
    assert [(m["id"], m["direction"]) for m in thread["items"]] == [
        (msg.id, "in"),
        (out["id"], "out"),
    ]
    assert thread["items"][0]["email"] == e
    assert thread["items"][1]["email"]["message_id"] == o["message_id"]

    # -- a restricted report made from it (corruption): the ticket's conversation
    _m, ticket = await lab.inbox.to_ticket(
        lab.agent, msg.id, {"domain": "state", "topic": "corruption", "level": 2}
    )
    [_reply, code_mail] = await lab.smtp.wait_for(2)
    answer, answer_id = mail(
        sender="ba@example.org",
        subject=f"Re: {code_mail.message['Subject']}",
        text="Cảm ơn, cây vẫn còn đó.",
        headers={
            "In-Reply-To": code_mail.message["Message-ID"],
            "References": code_mail.message["References"],
        },
    )
    lab.dovecot.deliver(answer)
    rows = await on_desk(lab, 2)
    [joined] = [m for m in rows if m.external_id == answer_id]
    assert joined.state == State.ATTACHED and joined.ticket_id == ticket.id
    code_id = code_mail.message["Message-ID"].strip()

    convo = await get(lab, f"{API}/tickets/{ticket.code}/messages", desk)
    items = convo["items"]
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)  # time order
    by_id = {i["id"]: i for i in items}
    [code_out] = [i for i in items if i["email"]["message_id"] == code_id]
    assert set(by_id) == {msg.id, out["id"], code_out["id"], joined.id}
    assert by_id[msg.id]["state"] == "ticket" and by_id[msg.id]["ticket_id"] == ticket.id
    # the answer sent before the ticket existed belongs to it through the mail it answers
    assert by_id[out["id"]]["ticket_id"] is None
    assert code_out["ticket_id"] == ticket.id and ticket.code in code_out["body"]
    assert code_out["email"]["in_reply_to"] == mid
    assert by_id[joined.id]["email"]["in_reply_to"] == code_id
    [ticket_file] = by_id[msg.id]["email"]["attachments"]
    assert ticket_file["url"] == f"/tickets/{ticket.code}/attachments/{stored.id}"
    assert await download(lab, ticket_file["url"], desk) == photo

    # a colleague on the same desk, not cleared for a restricted report
    await lab.ctx.accounts.create_user(
        None,
        {
            "username": "colleague",
            "display_name": "Đồng nghiệp",
            "role": "agent",
            "password": PASSWORD,
            "extension": lab.settings.agents[1].extension,
        },
    )
    colleague = await token(lab, "colleague")
    refused = await get(lab, f"{API}/tickets/{ticket.code}/messages", colleague, 403)
    assert refused["error"]
    await get(lab, f"{API}/tickets/{ticket.code}", colleague, 403)  # the same rule
    # the same report, no longer restricted (reclassified): they see its conversation
    ticket = await lab.ctx.ticket_queries.get(ticket.id)
    ticket = await lab.ctx.tickets.update(lab.agent, ticket.id, ticket.version, {"topic": "trees"})
    shown = await get(lab, f"{API}/tickets/{ticket.code}/messages", colleague)
    assert [i["id"] for i in shown["items"]] == [i["id"] for i in items]

    # an agent of another team's desk: the mail is not theirs to see (as its page)
    await lab.ctx.accounts.create_user(
        None,
        {
            "username": "partydesk",
            "display_name": "Bàn Thành ủy",
            "role": "agent",
            "password": PASSWORD,
            "extension": next(a.extension for a in lab.settings.agents if a.team == "party"),
        },
    )
    other = await token(lab, "partydesk")
    await get(lab, f"{API}/messages/{msg.id}", other, 404)
    await get(lab, f"{API}/messages/{msg.id}/conversation", other, 404)
    assert msg.id not in [i["id"] for i in (await get(lab, f"{API}/messages", other))["items"]]
