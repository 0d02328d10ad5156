"""What the domains need of an email sender: one ``send``, no transport details.

The domains that send mail (the leaders' periodic reports, :mod:`queue_stats.periodic`)
take a :class:`Mailer` from the composition root, or None when email is not configured;
they never open an SMTP connection themselves.  The SMTP sender (``[email]``) implements
this protocol and is wired in ``hotline/app.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """A file sent with a message."""

    filename: str
    content_type: str  # e.g. "application/pdf"
    data: bytes


class Mailer(Protocol):
    """Sends one message to its recipients; raises when it could not be handed on (the
    caller records the failure and tries again later)."""

    async def send(
        self,
        to: Sequence[str],
        subject: str,
        text: str,
        attachments: Sequence[MailAttachment] = (),
    ) -> None: ...
