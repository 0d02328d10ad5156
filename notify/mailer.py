"""How a notification goes out by email: the :class:`Mailer` protocol, and a small
SMTP sender for a local relay.

The email channel (``mail/``, IMAP in and SMTP out with TLS and authentication)
brings the hotline's own sender; the composition root hands any object with this
``send`` to the notifications.  Until then :class:`SmtpMailer` speaks plain SMTP to
a relay on the machine or the city's relay that trusts it (``notify.smtp_host``).
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol


class MailError(Exception):
    """The mail could not be handed to the server (the reason is the message)."""


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> str:
        """Send one plain-text mail; returns its Message-ID (raises on refusal)."""
        ...


class SmtpMailer:
    """Plain SMTP to a relay (no TLS, no login: the relay trusts this machine)."""

    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 30) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        # never answered by an auto-responder as if a person wrote it (RFC 3834)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(body)
        return msg

    async def send(self, to: str, subject: str, body: str) -> str:
        msg = self.message(to, subject, body)

        def deliver() -> None:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(msg)

        try:
            await asyncio.to_thread(deliver)
        except (OSError, smtplib.SMTPException) as e:
            raise MailError(f"SMTP {self.host}:{self.port}: {e}") from e
        return str(msg["Message-ID"])
