"""A mail's bytes made into what the desk needs, safely.

:func:`parse` never raises on a mail, however malformed: the worst of it is
kept as text.  It gives the sender's address as written (never believed: a
``From`` is anyone's to forge, so nothing is linked by address alone), the
thread's headers, the plain text, the HTML sanitised by Ammonia (nh3: a
whitelist of tags and attributes; scripts, styles, event handlers, forms,
frames and images dropped, links made ``noopener noreferrer``), the
attachments, and what kind of mail it is: a person's, a bounce (a delivery
status notification: ``multipart/report``, ``MAILER-DAEMON``, an empty
``Return-Path``) or an auto-reply (``Auto-Submitted`` other than ``no``,
``X-Autoreply``, ``X-Autorespond``, ``Precedence: bulk|junk|list|auto_reply``,
``X-Auto-Response-Suppress``, ``List-Id``): those two are never answered.
"""

from __future__ import annotations

import html as _html
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

import nh3

log = logging.getLogger(__name__)

PERSON = "person"
BOUNCE = "bounce"
AUTO_REPLY = "auto_reply"

#: what a sanitised mail may keep (no img: a remote image is a read receipt)
SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "li", "ol", "p", "pre", "q",
    "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul",
}  # fmt: skip
SAFE_ATTRIBUTES = {
    "a": {"href", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "abbr": {"title"},
}
_MSGID = re.compile(r"<[^<>\s]+>")
_BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


@dataclass
class Part:
    """A file in a mail: its name as given (never a path), its declared type, its bytes."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    message_id: str | None
    from_address: str  # lower-cased addr-spec, "" if none could be read
    from_header: str
    to: list[str]
    subject: str
    in_reply_to: str | None
    references: list[str]
    text: str
    html: str | None  # sanitised
    kind: str = PERSON
    attachments: list[Part] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return self.kind == PERSON and bool(self.from_address)


def sanitize_html(raw: str) -> str:
    """HTML that shows a mail's formatting and cannot run or fetch anything."""
    return nh3.clean(
        raw,
        tags=SAFE_TAGS,
        attributes=SAFE_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        # the content of these is not text to show either
        clean_content_tags={"script", "style", "template", "iframe", "object", "noscript"},
    )


def html_text(raw: str) -> str:
    """The text of an HTML body (for a mail that sends no plain part)."""
    raw = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</tr\s*>|</h[1-6]\s*>|</li\s*>", "\n", raw)
    stripped = nh3.clean(raw, tags=set(), clean_content_tags={"script", "style", "head", "title"})
    text = _html.unescape(stripped)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def message_ids(value: str | None) -> list[str]:
    """The ``<id@host>`` in a header, in order (References, In-Reply-To)."""
    return _MSGID.findall(value or "")


def clean(text: str) -> str:
    """Text any database stores: no NUL (PostgreSQL refuses it), no lone surrogate
    (the parser's stand-in for bytes that were not text)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a malformed header is no reason to lose the mail
        value = msg.get_all(name, [""])[0] if msg.get_all(name) else None
    try:
        text = str(value or "")
    except Exception:
        text = ""
    return clean(text).strip()


def kind_of(msg: Message, from_address: str) -> str:
    """A person's mail, a bounce or an auto-reply (the last two are never answered)."""
    ctype = msg.get_content_type()
    if ctype == "multipart/report" or from_address.startswith(_BOUNCE_SENDERS):
        return BOUNCE
    return_path = _header(msg, "Return-Path")
    if return_path in ("<>", "") and msg.get("Return-Path") is not None:
        return BOUNCE
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return AUTO_REPLY
    if _header(msg, "X-Autoreply") or _header(msg, "X-Autorespond"):
        return AUTO_REPLY
    if _header(msg, "Precedence").lower() in ("bulk", "junk", "list", "auto_reply"):
        return AUTO_REPLY
    suppress = _header(msg, "X-Auto-Response-Suppress").lower()
    if suppress and any(w in suppress for w in ("all", "oof", "autoreply")):
        return AUTO_REPLY
    if _header(msg, "List-Id") or _header(msg, "List-Unsubscribe"):
        return AUTO_REPLY
    return PERSON


def _text_of(part: Message) -> str:
    try:
        if isinstance(part, EmailMessage):
            return str(part.get_content())
    except Exception:  # a broken part is read as bytes below
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def parse(raw: bytes) -> ParsedMail:
    """What ``raw`` (a whole mail, RFC 5322) says; never raises on a bad mail."""
    try:
        return _parse(raw)
    except Exception:  # the standard parser gave up: the bytes are kept as text
        log.exception("a mail the parser could not read (%d bytes): kept as text", len(raw))
        return ParsedMail(
            message_id=None,
            from_address="",
            from_header="",
            to=[],
            subject="",
            in_reply_to=None,
            references=[],
            text=clean(raw[:200_000].decode("utf-8", "replace")),
            html=None,
        )


def _parse(raw: bytes) -> ParsedMail:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    from_header = _header(msg, "From")
    _, from_address = parseaddr(from_header)
    from_address = from_address.strip().lower() if "@" in from_address else ""
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Part] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        try:
            filename = part.get_filename()
        except Exception:
            filename = None
        if (
            disposition == "attachment"
            or (filename and disposition != "inline")
            or (filename and not ctype.startswith("text/"))
        ):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                attachments.append(Part(clean(filename) if filename else None, ctype, data))
            continue
        if ctype == "text/plain":
            texts.append(_text_of(part))
        elif ctype == "text/html":
            htmls.append(_text_of(part))
        elif ctype in ("message/delivery-status", "text/rfc822-headers"):
            texts.append(_text_of(part))
        elif not ctype.startswith(("text/", "multipart/", "message/")):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                attachments.append(Part(filename, ctype, data))
    raw_html = clean("\n".join(htmls)) if htmls else None
    text = clean("\n\n".join(t.strip() for t in texts if t.strip()))
    if not text and raw_html:
        text = html_text(raw_html)
    mid = message_ids(_header(msg, "Message-ID"))
    in_reply_to = message_ids(_header(msg, "In-Reply-To"))
    return ParsedMail(
        message_id=mid[0] if mid else None,
        from_address=from_address,
        from_header=from_header,
        to=[a for _, a in getaddresses([_header(msg, "To"), _header(msg, "Cc")]) if a],
        subject=_header(msg, "Subject"),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids(_header(msg, "References")),
        text=text,
        html=sanitize_html(raw_html) if raw_html else None,
        kind=kind_of(msg, from_address),
        attachments=attachments,
    )


def parse_headers(raw: bytes) -> ParsedMail:
    """The headers only of a mail too large to fetch whole (its body is not read)."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    return parse(head + b"\r\n\r\n")
