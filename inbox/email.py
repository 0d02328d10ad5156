"""Email on the desks: a mail read from the mailbox becomes an inbox message
(:class:`EmailIntake`), and an answer goes out threaded (:class:`EmailSender`).

:meth:`EmailIntake.store` is what :class:`mail.imap.MailboxReader` calls for
each mail, and it commits before returning, so the reader marks the mail done
on the server only once it is ours.  It is idempotent twice over: a mail read
again from the same folder, UIDVALIDITY and UID (the server was not told
before a crash) is the row stored the first time; a mail with a Message-ID
already stored (delivered twice, or copied into the folder again) is too.

Where it goes:

1. a mail in a thread of ours (``In-Reply-To``/``References`` name a mail of
   the conversation that has a ticket) joins that ticket;
2. else a tracking code or number quoted in the subject or the text, with a
   right check symbol and a ticket that has it, joins that ticket;
3. else it waits on the email desk (``email.team``).
The sender's address is never enough on its own: a ``From`` is anyone's to
write.  A bounce or an auto-reply is kept, marked (never answered) and, with no
ticket, put aside as no content; a bounce that names one of our mails marks it
failed.  A mail over ``email.max_message_mb`` is kept by its headers only
(flag ``too_large``).  Attachments are kept by id under the attachments folder
(the web report's store, :mod:`tickets.attachments`) when of an allowed type and
size; the others are listed in the message's text as not kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.db import Database
from core.settings import Settings
from inbox.models import Direction, Flag, Message, MessageChannel, MessageEmail, State
from inbox.service import BODY_MAX, InboxService
from mail.imap import Fetched
from mail.outgoing import Mailer, new_message_id, reply_subject
from mail.parse import AUTO_REPLY, BOUNCE, ParsedMail, message_ids, parse, parse_headers
from tickets import codes, numbers
from tickets.attachments import (
    check_photo,
    new_id,
    remove_file,
    write_file,
)
from tickets.exceptions import InvalidInput
from tickets.models import Attachment, Ticket

log = logging.getLogger(__name__)

# a code as written to a citizen ("K7M-4QX8"), or its 7 symbols run together
_CODE = re.compile(
    r"(?<![A-Za-z0-9])([2-9A-HJ-NP-Z]{3}[-\u2010-\u2015 ]?[2-9A-HJ-NP-Z]{4})(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# a number as written to a citizen ("123 456 789 0"), or its 10 digits run together
_NUMBER = re.compile(r"(?<![0-9])([1-9][0-9]{2}[ .-]?[0-9]{3}[ .-]?[0-9]{3}[ .-]?[0-9])(?![0-9])")
# mails parsed in a worker thread when larger than this (small ones cost less inline)
_THREAD_BYTES = 200_000


def external_id_of(message_id: str | None, mail: Fetched | None = None) -> str:
    """The inbox's id of a mail: its Message-ID (hashed when longer than the column),
    else where it was read (a mail with no Message-ID is still stored once)."""
    if message_id:
        return (
            message_id
            if len(message_id) <= 200
            else "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
        )
    assert mail is not None
    return f"imap:{mail.folder[:120]}:{mail.uidvalidity}:{mail.uid}"


def quoted_codes(text: str) -> list[tuple[str, str]]:
    """(column, value) of each tracking code or number in ``text`` whose check is right."""
    found: list[tuple[str, str]] = []
    for m in _CODE.finditer(text):
        raw = re.sub(r"[^0-9A-Z]", "", m.group(1).upper())
        if codes.code_like(m.group(1)) and codes.is_valid(raw):
            found.append(("code", codes.format_code(raw)))
    for m in _NUMBER.finditer(text):
        raw = re.sub(r"\D", "", m.group(1))
        if numbers.is_valid(raw):
            found.append(("number", raw))
    return found


@dataclass(frozen=True)
class KeptFile:
    id: str
    filename: str | None
    content_type: str
    data: bytes
    width: int | None = None
    height: int | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _type_allowed(content_type: str, allowed: list[str]) -> bool:
    for a in allowed:
        if a == content_type or (a.endswith("/*") and content_type.startswith(a[:-1])):
            return True
    return False


def check_files(settings: Settings, parsed: ParsedMail) -> tuple[list[KeptFile], list[str]]:
    """The attachments kept, and a line for each one refused (CPU: run in a thread).

    The declared type must be allowed; an image is decoded (its type is what
    Pillow finds, as for a web report's photo), a PDF must start like one."""
    cfg = settings.email
    max_bytes = int(cfg.max_attachment_mb * 1_000_000)
    kept: list[KeptFile] = []
    refused: list[str] = []
    for part in parsed.attachments:
        name = (part.filename or "").replace("/", "_").replace("\\", "_")[:200] or None
        label = name or part.content_type
        if len(part.data) > max_bytes:
            refused.append(f"{label}: larger than {cfg.max_attachment_mb:g} MB")
            continue
        # never kept whatever the settings: files a browser would run as a page
        active = ("image/svg+xml", "text/html", "application/xhtml+xml", "text/xml")
        if part.content_type in active or not _type_allowed(
            part.content_type, cfg.attachment_types
        ):
            refused.append(f"{label}: type {part.content_type} not accepted")
            continue
        ctype, width, height = part.content_type, None, None
        if part.content_type.startswith("image/") and part.content_type != "image/gif":
            try:
                photo = check_photo(
                    part.data, max_bytes=max_bytes, max_pixels=50_000_000, original_name=name
                )
            except InvalidInput:
                refused.append(f"{label}: not a readable image")
                continue
            ctype, width, height = photo.content_type, photo.width, photo.height
        elif part.content_type == "image/gif" and not part.data.startswith((b"GIF87a", b"GIF89a")):
            refused.append(f"{label}: not a GIF image")
            continue
        elif part.content_type == "application/pdf" and not part.data.startswith(b"%PDF-"):
            refused.append(f"{label}: not a PDF")
            continue
        kept.append(KeptFile(new_id(), name, ctype, part.data, width, height))
    return kept, refused


class EmailIntake:
    """Mail from the mailbox into the inbox (see the module's story)."""

    def __init__(self, inbox: InboxService) -> None:
        self.inbox = inbox
        self.db: Database = inbox.db
        self.settings: Settings = inbox.settings
        self.clock: Clock = inbox.clock

    async def store(self, mail: Fetched) -> tuple[Message, bool]:
        """Store one mail (once): (its message, whether it is new).  Commits before returning."""
        existing = await self._already(mail, None)
        if existing is not None:
            return existing, False
        if len(mail.raw) > _THREAD_BYTES:
            parsed, (kept, refused) = await asyncio.to_thread(self._prepare, mail)
        else:
            parsed, (kept, refused) = self._prepare(mail)
        if kept:
            await asyncio.to_thread(self._write, kept)
        try:
            msg, new = await self._store(mail, parsed, kept, refused)
        except BaseException:
            await asyncio.to_thread(self._remove, kept)
            raise
        if not new:
            await asyncio.to_thread(self._remove, kept)
            return msg, False
        log.info(
            "email %d from %s (uid %d): %s%s, %d attachments",
            msg.id,
            msg.citizen,
            mail.uid,
            msg.state,
            f" ({msg.flag})" if msg.flag else "",
            len(kept),
        )
        await self.inbox._announce(msg, "new")
        return msg, True

    def _prepare(self, mail: Fetched) -> tuple[ParsedMail, tuple[list[KeptFile], list[str]]]:
        parsed = parse_headers(mail.raw) if mail.headers_only else parse(mail.raw)
        return parsed, check_files(self.settings, parsed)

    def _write(self, kept: list[KeptFile]) -> None:
        for f in kept:
            write_file(self.settings, f.id, f.data)

    def _remove(self, kept: list[KeptFile]) -> None:
        for f in kept:
            remove_file(self.settings, f.id)

    async def _already(self, mail: Fetched, external_id: str | None) -> Message | None:
        async with self.db.session() as s:
            return await self._find(s, mail, external_id)

    async def _find(self, s: Any, mail: Fetched, external_id: str | None) -> Message | None:
        found: Message | None = await s.scalar(
            select(Message)
            .join(MessageEmail, MessageEmail.message_id == Message.id)
            .where(
                MessageEmail.folder == mail.folder,
                MessageEmail.uidvalidity == mail.uidvalidity,
                MessageEmail.uid == mail.uid,
            )
        )
        if found is None and external_id is not None:
            found = await s.scalar(
                select(Message).where(
                    Message.channel == MessageChannel.EMAIL,
                    Message.direction == Direction.IN,
                    Message.external_id == external_id,
                )
            )
        return found

    async def _store(
        self, mail: Fetched, parsed: ParsedMail, kept: list[KeptFile], refused: list[str]
    ) -> tuple[Message, bool]:
        now = self.clock.now()
        external_id = external_id_of(parsed.message_id, mail)
        flag: str | None = None
        if parsed.kind == BOUNCE:
            flag = Flag.BOUNCE
        elif parsed.kind == AUTO_REPLY:
            flag = Flag.AUTO_REPLY
        elif mail.headers_only:
            flag = Flag.TOO_LARGE
        body = parsed.text
        if mail.headers_only:
            body = (
                f"[too large: {mail.size / 1_000_000:.1f} MB, over "
                f"{self.settings.email.max_message_mb:g} MB; only its headers were read. "
                "The mail stays in the mailbox.]"
            )
        elif not body.strip() and not kept:
            flag = flag or Flag.EMPTY
        if refused:
            body += "\n\n[attachments not kept: " + "; ".join(refused) + "]"
        try:
            async with self.db.session() as s:
                existing = await self._find(s, mail, external_id)
                if existing is not None:
                    return existing, False
                ticket = await self._ticket_for(s, parsed)
                if flag == Flag.BOUNCE:
                    await self._bounced(s, parsed, now)
                if ticket is not None:
                    state = State.ATTACHED
                elif flag in (Flag.BOUNCE, Flag.AUTO_REPLY):
                    state = State.NO_CONTENT
                else:
                    state = State.NEW
                msg = Message(
                    channel=MessageChannel.EMAIL,
                    direction=Direction.IN,
                    external_id=external_id,
                    citizen=(parsed.from_address or "(no sender)")[:200],
                    service_address=self.settings.email.address,
                    team=self.settings.email_team,
                    body=body[:BODY_MAX],
                    flag=flag,
                    state=state,
                    ticket_id=ticket.id if ticket else None,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
                s.add(msg)
                await s.flush()
                s.add(
                    MessageEmail(
                        message_id=msg.id,
                        rfc_message_id=parsed.message_id,
                        subject=parsed.subject[:2000],
                        in_reply_to=parsed.in_reply_to,
                        references=" ".join(parsed.references[-50:]) or None,
                        html=parsed.html[: BODY_MAX * 5] if parsed.html else None,
                        from_header=parsed.from_header[:1000],
                        size=mail.size,
                        folder=mail.folder,
                        uidvalidity=mail.uidvalidity,
                        uid=mail.uid,
                    )
                )
                for f in kept:
                    s.add(
                        Attachment(
                            id=f.id,
                            ticket_id=ticket.id if ticket else None,
                            message_id=msg.id,
                            kind="email",
                            content_type=f.content_type,
                            size=len(f.data),
                            width=f.width,
                            height=f.height,
                            sha256=f.sha256,
                            original_name=f.filename,
                            created_at=now,
                        )
                    )
        except IntegrityError:
            # the same mail stored at the same moment by another reader
            found = await self._already(mail, external_id)
            if found is None:
                raise
            return found, False
        return msg, True

    async def _ticket_for(self, s: Any, parsed: ParsedMail) -> Ticket | None:
        """The ticket a mail belongs to by its thread or a quoted code (never its sender)."""
        refs = [external_id_of(r) for r in [*parsed.references, parsed.in_reply_to] if r][-50:]
        if refs:
            ticket_id = await s.scalar(
                select(Message.ticket_id)
                .where(
                    Message.channel == MessageChannel.EMAIL,
                    Message.external_id.in_(refs),
                    Message.ticket_id.is_not(None),
                )
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(1)
            )
            if ticket_id is not None:
                ticket: Ticket | None = await s.get(Ticket, ticket_id)
                if ticket is not None:
                    return ticket
        for text in (parsed.subject, parsed.text[:20_000]):
            for column, value in quoted_codes(text):
                found = await s.scalar(select(Ticket).where(getattr(Ticket, column) == value))
                if found is not None:
                    return found  # type: ignore[no-any-return]
        return None

    async def _bounced(self, s: Any, parsed: ParsedMail, now: Any) -> None:
        """A bounce that names a mail of ours (its headers quoted in the report) fails it."""
        ids = [external_id_of(i) for i in message_ids(parsed.text)][:20]
        if not ids:
            return
        rows = await s.scalars(
            select(Message).where(
                Message.channel == MessageChannel.EMAIL,
                Message.direction == Direction.OUT,
                Message.external_id.in_(ids),
            )
        )
        for out in rows:
            out.state, out.error = State.FAILED, "bounced: " + (parsed.subject or "")[:200]
            out.updated_at = now
            out.version += 1


class EmailSender:
    """The inbox's sender for the email channel: a reply threaded under the mail it
    answers, or a notice of ours (a tracking code) when it answers nothing."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, mailer: Mailer) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.mailer = mailer

    async def send(self, message_id: int, to: str, text: str) -> None:
        """Send the inbox's message ``message_id``; raises (MailError) if refused."""
        rfc_id = new_message_id(self.settings.email.address)
        async with self.db.session() as s:
            msg = await s.get(Message, message_id)
            assert msg is not None
            parent: MessageEmail | None = None
            if msg.reply_to_id is not None:
                parent = await s.get(MessageEmail, msg.reply_to_id)
            subject = reply_subject(parent.subject) if parent else await self._subject(msg, s)
            references = []
            if parent is not None:
                references = [*(parent.references or "").split(), parent.rfc_message_id]
            in_reply_to = parent.rfc_message_id if parent else None
            # the id is written before the mail leaves: a crash after the server took
            # it still threads the citizen's answer
            msg.external_id = external_id_of(rfc_id)
            s.add(
                MessageEmail(
                    message_id=msg.id,
                    rfc_message_id=rfc_id,
                    subject=subject,
                    in_reply_to=in_reply_to,
                    references=" ".join(r for r in references if r) or None,
                )
            )
            automatic = msg.sent_by is None
        await self.mailer.send(
            to,
            subject,
            text,
            message_id=rfc_id,
            in_reply_to=in_reply_to,
            references=[r for r in references if r],
            automatic=automatic,
        )
        async with self.db.session() as s:
            await s.execute(
                update(Message)
                .where(Message.id == message_id, Message.state == State.QUEUED)
                .values(state=State.SENT, updated_at=self.clock.now(), version=Message.version + 1)
            )

    async def _subject(self, msg: Message, s: Any) -> str:
        if msg.ticket_id is not None:
            ticket = await s.get(Ticket, msg.ticket_id)
            if ticket is not None:
                return f"[{ticket.code}] Tổng đài 1022 / Hotline 1022"
        return "Tổng đài 1022 / Hotline 1022"
