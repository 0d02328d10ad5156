"""Sending mail over SMTP: one small class, :class:`Mailer`, for every sender in the
hotline (the email desk's replies, a ticket's tracking code, agencies' notices).

``Mailer.send(to, subject, text, html=None, ...)`` builds one MIME message (plain
text, and an HTML alternative when given), gives it a ``Message-ID`` of ours, sets
``In-Reply-To`` and ``References`` when it answers a mail so the citizen's mail
program keeps the thread, and hands it to the server named in ``[email]``:
implicit TLS (``smtp_tls = "tls"``, port 465), STARTTLS (``"starttls"``, 587, the
upgrade is required: a server that does not offer it is refused) or plain
(``"none"``, loopback test servers).  It logs in when ``smtp_user`` is set.

It returns the ``Message-ID`` it used (store it: a citizen's answer quotes it in
``In-Reply-To``); a refusal raises :class:`MailError` with the server's words.
A connection per message keeps it simple and robust: the hotline sends tens of
mails an hour, not thousands a second.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

import aiosmtplib

from core.mail import MailAttachment
from core.settings import Settings

log = logging.getLogger(__name__)

# headers a caller may not set through ``headers``: ours to decide
_OURS = {"from", "to", "subject", "message-id", "date", "in-reply-to", "references"}


class MailError(Exception):
    """The mail could not be sent; the text says why (the server's answer)."""


def new_message_id(address: str) -> str:
    """A globally unique ``<...@domain>`` for a mail from ``address``."""
    domain = address.rpartition("@")[2] or "localhost"
    return make_msgid(idstring=secrets.token_hex(6), domain=domain)


def reply_subject(subject: str | None) -> str:
    """``Re: <subject>`` once, however many times it was answered."""
    subject = (subject or "").strip()
    if subject[:3].lower() == "re:":
        return subject
    return f"Re: {subject}" if subject else "Re:"


def build(
    settings: Settings,
    to: str,
    subject: str,
    text: str,
    *,
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    automatic: bool = False,
) -> EmailMessage:
    """The message :meth:`Mailer.send` sends (built apart so it can be checked)."""
    cfg = settings.email
    msg = EmailMessage()
    msg["From"] = formataddr((cfg.display_name, cfg.address)) if cfg.display_name else cfg.address
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id or new_message_id(cfg.address)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    refs = [r for r in references if r]
    if in_reply_to and in_reply_to not in refs:
        refs.append(in_reply_to)
    if refs:
        # RFC 5322 3.6.4: the parent's References then the parent's id; long
        # threads keep the first and the last ones (what mail programs do)
        if len(refs) > 20:
            refs = refs[:1] + refs[-19:]
        msg["References"] = " ".join(refs)
    if automatic:
        # a notice no person wrote: auto-responders must not answer it (RFC 3834)
        msg["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        if name.lower() in _OURS:
            raise ValueError(f"headers: {name} is set by the mailer")
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename
        )
    return msg


def tls_context_of(settings: Settings) -> ssl.SSLContext:
    """How the mail servers' certificates are checked: ``email.ca_file``, else the system's."""
    ca = settings.email.ca_file
    return ssl.create_default_context(cafile=str(ca) if ca else None)


class Mailer:
    """The hotline's outgoing mail, through the SMTP server of ``[email]``."""

    def __init__(self, settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.tls_context = tls_context or (
            tls_context_of(settings) if settings.email.smtp_tls != "none" else None
        )

    async def send(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        *,
        message_id: str | None = None,
        in_reply_to: str | None = None,
        references: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[tuple[str, str, bytes]] = (),
        automatic: bool = False,
    ) -> str:
        """Send one mail to ``to``; its ``Message-ID`` (raises :class:`MailError`).

        ``attachments``: (file name, content type, bytes); ``automatic``: a notice
        no person wrote (marked ``Auto-Submitted: auto-generated``)."""
        try:
            Address(addr_spec=to)
        except (ValueError, IndexError) as e:
            raise MailError(f"to: not an email address ({to!r})") from e
        msg = build(
            self.settings,
            to,
            subject,
            text,
            html=html,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            headers=headers,
            attachments=attachments,
            automatic=automatic,
        )
        await self.send_message(msg)
        return str(msg["Message-ID"])

    async def send_message(self, msg: EmailMessage) -> None:
        """Hand a built message to the SMTP server (raises :class:`MailError`)."""
        cfg = self.settings.email
        password = self.settings.email_smtp_password.get_secret_value()
        try:
            await aiosmtplib.send(
                msg,
                hostname=cfg.smtp_host,
                port=cfg.smtp_port,
                username=cfg.smtp_user if cfg.smtp_user else None,
                password=password if cfg.smtp_user else None,
                use_tls=cfg.smtp_tls == "tls",
                start_tls=True if cfg.smtp_tls == "starttls" else False,
                tls_context=self.tls_context,
                timeout=cfg.timeout_seconds,
            )
        except aiosmtplib.SMTPException as e:
            raise MailError(f"SMTP {cfg.smtp_host}:{cfg.smtp_port}: {e}") from e
        except (OSError, TimeoutError) as e:
            raise MailError(f"SMTP {cfg.smtp_host}:{cfg.smtp_port} unreachable: {e}") from e
        log.info("mail %s to %s sent", msg["Message-ID"], msg["To"])


class Notices:
    """The SMTP sender as the domains' :class:`core.mail.Mailer`: automatic notices
    (the leaders' reports, notifications), one mail to each recipient."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    async def send(
        self,
        to: Sequence[str],
        subject: str,
        text: str,
        attachments: Sequence[MailAttachment] = (),
    ) -> None:
        files = [(a.filename, a.content_type, a.data) for a in attachments]
        for address in to:
            await self.mailer.send(address, subject, text, attachments=files, automatic=True)
