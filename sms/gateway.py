"""Kannel's HTTP side as the application sees it: what an incoming call
carries (:func:`parse_incoming`) and ``sendsms`` (:class:`SendSms`).

Kannel calls us with the original bytes of the SMS (``%b``) and its coding
(``%c``: 0 is 7-bit text Kannel already turned into its charset ``%C``, 1 is
8-bit data, 2 is UCS-2).  The query string is read raw: 8-bit data is no
UTF-8 and would not survive a decoding step.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass

import aiohttp

from core.settings import Settings
from sms.coding import size
from sms.kannel import SENDSMS_USER, KannelError, dlr_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One SMS in, as Kannel delivered it."""

    external_id: str
    sender: str
    receiver: str
    text: str
    binary: bool


class BadIncoming(ValueError):
    """A call that is not a well-formed incoming SMS; ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def _raw_params(raw_query: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        out[urllib.parse.unquote(name)] = urllib.parse.unquote_to_bytes(value.replace("+", " "))
    return out


def parse_incoming(raw_query: str) -> Incoming:
    """The SMS in a Kannel ``get-url`` call's query string (raises :class:`BadIncoming`)."""
    p = _raw_params(raw_query)
    for field in ("id", "from", "to"):
        if not p.get(field, b"").strip():
            raise BadIncoming(field, "missing")
    data = p.get("text", b"")
    try:
        coding = int(p.get("coding", b"0") or b"0")
    except ValueError:
        raise BadIncoming("coding", "not a number") from None
    udh = p.get("udh", b"")
    charset = p.get("charset", b"").decode("ascii", "replace").strip() or "UTF-8"
    binary = False
    if coding == 2:
        text = data.decode("utf-16-be", "replace")
    elif coding == 1 or (udh and coding != 0):
        text, binary = data.hex(), True
    else:
        try:
            text = data.decode(charset if charset.upper() != "UTF-16BE" else "utf-16-be")
        except (LookupError, UnicodeDecodeError):
            text = data.decode("latin-1")
    return Incoming(
        external_id=p["id"].decode("ascii", "replace").strip(),
        sender=p["from"].decode("ascii", "replace").strip(),
        receiver=p["to"].decode("ascii", "replace").strip(),
        text=text,
        binary=binary,
    )


class SendSms:
    """Kannel's ``sendsms``: one message out, with its delivery reports asked for."""

    # every report: delivered, not delivered, queued, taken and refused by the SMSC
    DLR_MASK = 31

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message_id: int, to: str, text: str) -> None:
        """Hand ``text`` to Kannel for ``to``; raises :class:`KannelError` if refused."""
        s = self.settings.sms
        sz = size(text)
        query = {
            "username": SENDSMS_USER,
            "password": self.settings.kannel_password.get_secret_value(),
            "from": self.settings.sms_sender,
            "to": to,
            "text": text,
            "charset": "UTF-8",
            "coding": str(sz.kannel_coding),
            "dlr-mask": str(self.DLR_MASK),
            "dlr-url": dlr_url(self.settings, message_id),
        }
        url = f"http://{s.kannel_host}:{s.sendsms_port}/cgi-bin/sendsms"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
                http.get(url, params=query) as r,
            ):
                body = (await r.text()).strip()
                if r.status not in (200, 202):
                    raise KannelError(f"sendsms answered {r.status}: {body}")
        except aiohttp.ClientError as e:
            raise KannelError(f"sendsms does not answer ({e})") from e
        except TimeoutError as e:
            raise KannelError("sendsms does not answer (timeout)") from e
        log.info("sms %d to %s: %s (%d parts %s)", message_id, to, body, sz.parts, sz.coding)
