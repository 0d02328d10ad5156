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
        return (await self.store_batch([mail]))[0]

    async def store_batch(self, mails: list[Fetched]) -> list[tuple[Message, bool]]:
        """Store the mails of one fetch (each once) in one transaction: for each, its
        message and whether it is new.  Commits before returning; the reader marks
        them done on the server only then."""
        if not mails:
            return []
        # parsing, sanitising and decoding photos is CPU work: off the event loop
        prepared = await asyncio.to_thread(lambda: [self._prepare(m) for m in mails])
        kept_all = [f for _parsed, (kept, _refused) in prepared for f in kept]
        if kept_all:
            await asyncio.to_thread(self._write, kept_all)
        try:
            results = await self._store_all(mails, prepared)
        except IntegrityError:
            # another writer stored one of them meanwhile: one at a time, each recognised
            await asyncio.to_thread(self._remove, kept_all)
            if len(mails) == 1:
                found = await self._already(
                    mails[0], external_id_of(prepared[0][0].message_id, mails[0])
                )
                if found is None:
                    raise
                return [(found, False)]
            return [r for m in mails for r in await self.store_batch([m])]
        except BaseException:
            await asyncio.to_thread(self._remove, kept_all)
            raise
        unused = [
            f
            for (msg, new), (_p, (kept, _r)) in zip(results, prepared, strict=True)
            if not new
            for f in kept
        ]
        if unused:
            await asyncio.to_thread(self._remove, unused)
        for (msg, new), mail, (_p, (kept, _r)) in zip(results, mails, prepared, strict=True):
            if not new:
                continue
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
        return results

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
            return (await self._existing(s, [mail], [external_id]))[0]

    async def _existing(
        self, s: Any, mails: list[Fetched], external_ids: list[str | None]
    ) -> list[Message | None]:
        """For each mail, the message already stored for it (by where it was read, or
        by its Message-ID), in two queries whatever the batch's size."""
        folder, uidvalidity = mails[0].folder, mails[0].uidvalidity
        same_box = all(m.folder == folder and m.uidvalidity == uidvalidity for m in mails)
        by_uid: dict[tuple[str | None, int | None, int | None], Message] = {}
        if same_box:
            rows = await s.execute(
                select(Message, MessageEmail.uid)
                .join(MessageEmail, MessageEmail.message_id == Message.id)
                .where(
                    MessageEmail.folder == folder,
                    MessageEmail.uidvalidity == uidvalidity,
                    MessageEmail.uid.in_([m.uid for m in mails]),
                )
            )
            by_uid = {(folder, uidvalidity, uid): msg for msg, uid in rows.all()}
        else:
            for m in mails:
                found = await s.scalar(
                    select(Message)
                    .join(MessageEmail, MessageEmail.message_id == Message.id)
                    .where(
                        MessageEmail.folder == m.folder,
                        MessageEmail.uidvalidity == m.uidvalidity,
                        MessageEmail.uid == m.uid,
                    )
                )
                if found is not None:
                    by_uid[(m.folder, m.uidvalidity, m.uid)] = found
        wanted = [e for e in external_ids if e is not None]
        by_external: dict[str, Message] = {}
        if wanted:
            rows2 = await s.scalars(
                select(Message).where(
                    Message.channel == MessageChannel.EMAIL,
                    Message.direction == Direction.IN,
                    Message.external_id.in_(wanted),
                )
            )
            by_external = {m.external_id: m for m in rows2.all() if m.external_id}
        return [
            by_uid.get((m.folder, m.uidvalidity, m.uid))
            or (by_external.get(e) if e is not None else None)
            for m, e in zip(mails, external_ids, strict=True)
        ]

    async def _store_all(
        self,
        mails: list[Fetched],
        prepared: list[tuple[ParsedMail, tuple[list[KeptFile], list[str]]]],
    ) -> list[tuple[Message, bool]]:
        now = self.clock.now()
        external_ids = [
            external_id_of(parsed.message_id, mail)
            for mail, (parsed, _files) in zip(mails, prepared, strict=True)
        ]
        results: list[tuple[Message, bool] | None] = []
        async with self.db.session() as s:
            existing = await self._existing(s, mails, list(external_ids))
            seen: dict[str, Message] = {}
            pending: list[tuple[Message, Fetched, ParsedMail, list[KeptFile], Ticket | None]] = []
            for mail, (parsed, (kept, refused)), external_id, found in zip(
                mails, prepared, external_ids, existing, strict=True
            ):
                if found is None:
                    found = seen.get(external_id)  # twice in this very batch
                if found is not None:
                    results.append((found, False))
                    continue
                msg, ticket = await self._new_message(s, mail, parsed, kept, refused, now)
                msg.external_id = external_id
                seen[external_id] = msg
                s.add(msg)
                pending.append((msg, mail, parsed, kept, ticket))
                results.append(None)
            await s.flush()
            for msg, mail, parsed, kept, ticket in pending:
                self._add_details(s, msg, mail, parsed, kept, ticket, now)
        out: list[tuple[Message, bool]] = []
        it = iter(pending)
        for r in results:
            out.append(r if r is not None else (next(it)[0], True))
        return out

    async def _new_message(
        self,
        s: Any,
        mail: Fetched,
        parsed: ParsedMail,
        kept: list[KeptFile],
        refused: list[str],
        now: Any,
    ) -> tuple[Message, Ticket | None]:
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
        return msg, ticket

    def _add_details(
        self,
        s: Any,
        msg: Message,
        mail: Fetched,
        parsed: ParsedMail,
        kept: list[KeptFile],
        ticket: Ticket | None,
        now: Any,
    ) -> None:
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
