"""A carrier's SMSC for the tests: an SMPP 3.4 server that Kannel binds to.

It plays the carrier's side of what Kannel's ``smpp`` driver speaks: it
answers binds, enquire_links and unbinds, keeps every ``submit_sm`` (an SMS
Kannel sends) with its coding, UDH and registered-delivery request, answers
it with a message id and, when a receipt was asked for, sends the delivery
receipt (a ``deliver_sm`` with esm_class 0x04 and ``receipted_message_id``).
:meth:`SMSC.deliver` sends an SMS in (a ``deliver_sm``) as a phone would, and
waits for Kannel's ``deliver_sm_resp``.  The PDUs are written and read by
the SMPP 3.4 specification, field by field, so what Kannel puts on the wire
is what a test sees.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
RESP = 0x80000000
GENERIC_NACK = 0x80000000
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424


def _cstr(buf: bytes, pos: int) -> tuple[bytes, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end], end + 1


def _c(value: str | bytes) -> bytes:
    return (value.encode() if isinstance(value, str) else value) + b"\0"


@dataclass
class Sm:
    """The body of a submit_sm or deliver_sm."""

    source: str
    destination: str
    esm_class: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)
    message_id: str = ""

    @property
    def udh(self) -> bytes:
        if self.esm_class & 0x40 and self.short_message:
            return self.short_message[: self.short_message[0] + 1]
        return b""

    @property
    def payload(self) -> bytes:
        return self.short_message[len(self.udh) :] or self.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")

    @property
    def concat(self) -> tuple[int, int, int] | None:
        """(reference, total, sequence) of a concatenated part, from its UDH."""
        udh = self.udh
        i = 1
        while i < len(udh):
            iei, size = udh[i], udh[i + 1]
            data = udh[i + 2 : i + 2 + size]
            if iei == 0x00 and size == 3:
                return data[0], data[1], data[2]
            if iei == 0x08 and size == 4:
                return (data[0] << 8) | data[1], data[2], data[3]
            i += 2 + size
        return None

    def text(self) -> str:
        data = self.payload
        if self.data_coding == 8:
            return data.decode("utf-16-be")
        return data.decode("latin-1")


def parse_sm(body: bytes) -> Sm:
    pos = 0
    _service, pos = _cstr(body, pos)
    pos += 2
    source, pos = _cstr(body, pos)
    pos += 2
    dest, pos = _cstr(body, pos)
    esm_class, _pid, _prio = body[pos], body[pos + 1], body[pos + 2]
    pos += 3
    _sched, pos = _cstr(body, pos)
    _valid, pos = _cstr(body, pos)
    registered, _replace, coding, _default, length = body[pos : pos + 5]
    pos += 5
    short = body[pos : pos + length]
    pos += length
    tlvs: dict[int, bytes] = {}
    while pos + 4 <= len(body):
        tag, size = struct.unpack(">HH", body[pos : pos + 4])
        tlvs[tag] = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return Sm(
        source.decode(),
        dest.decode(),
        esm_class,
        registered,
        coding,
        short,
        tlvs,
    )


def sm_body(
    source: str, dest: str, data: bytes, *, coding: int = 0, esm_class: int = 0, tlvs: bytes = b""
) -> bytes:
    # an international number goes without its "+" and with TON 1, as SMSCs send them
    # (Kannel puts the "+" back); a national one with TON 0 (unknown)
    src_ton = 1 if source.startswith("+") else 0
    return (
        _c("")
        + bytes([src_ton, 1])
        + _c(source.lstrip("+"))
        + bytes([0, 1])
        + _c(dest)
        + bytes([esm_class, 0, 0])
        + _c("")
        + _c("")
        + bytes([0, 0, coding, 0, len(data)])
        + data
        + tlvs
    )


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


class SMSC:
    """One SMPP server; Kannel is its one client."""

    def __init__(self, host: str, port: int, system_id: str, password: str) -> None:
        self.host, self.port = host, port
        self.system_id, self.password = system_id, password
        self.submitted: list[Sm] = []
        self.binds: list[tuple[str, str, int]] = []  # (system_id, password, command)
        self.receipts = True
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._seq = 0
        self._next_id = 1000
        self._pending: dict[int, asyncio.Future[int]] = {}
        self.bound = asyncio.Event()
        self.changed = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, self.host, self.port)

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _send(self, command: int, seq: int, body: bytes = b"", status: int = 0) -> None:
        assert self._writer is not None
        self._writer.write(struct.pack(">IIII", 16 + len(body), command, status, seq) + body)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        try:
            while True:
                head = await reader.readexactly(16)
                length, command, status, seq = struct.unpack(">IIII", head)
                body = await reader.readexactly(length - 16)
                await self._handle(command, status, seq, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
                self.bound.clear()
            writer.close()

    async def _handle(self, command: int, status: int, seq: int, body: bytes) -> None:
        if command in (BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER):
            sid, pos = _cstr(body, 0)
            pw, pos = _cstr(body, pos)
            self.binds.append((sid.decode(), pw.decode(), command))
            ok = sid.decode() == self.system_id and pw.decode() == self.password
            self._send(command | RESP, seq, _c("testsmsc"), 0 if ok else 0x0E)  # ESME_RINVPASWD
            if ok:
                self.bound.set()
        elif command == ENQUIRE_LINK:
            self._send(ENQUIRE_LINK | RESP, seq)
        elif command == UNBIND:
            self._send(UNBIND | RESP, seq)
        elif command == SUBMIT_SM:
            sm = parse_sm(body)
            self._next_id += 1
            sm.message_id = str(self._next_id)
            self.submitted.append(sm)
            self._send(SUBMIT_SM | RESP, seq, _c(sm.message_id))
            self.changed.set()
            if sm.registered_delivery & 1 and self.receipts:
                self._receipt(sm)
        elif command & RESP:
            fut = self._pending.pop(seq, None)
            if fut is not None and not fut.done():
                fut.set_result(status)
        else:
            self._send(GENERIC_NACK, seq, status=0x03)  # ESME_RINVCMDID

    def _receipt(self, sm: Sm) -> None:
        text = (
            f"id:{sm.message_id} sub:001 dlvrd:001 submit date:2612070000 "
            "done date:2612070000 stat:DELIVRD err:000 text:"
        ).encode()
        extra = tlv(TLV_RECEIPTED_MESSAGE_ID, _c(sm.message_id)) + tlv(TLV_MESSAGE_STATE, b"\x02")
        self._seq += 1
        self._send(
            DELIVER_SM,
            self._seq,
            sm_body(sm.destination, sm.source, text, esm_class=0x04, tlvs=extra),
        )

    async def deliver(
        self,
        source: str,
        dest: str,
        data: bytes,
        *,
        coding: int = 0,
        esm_class: int = 0,
        timeout: float = 10,
    ) -> int:
        """An SMS in from ``source`` to ``dest``: Kannel's deliver_sm_resp status."""
        await asyncio.wait_for(self.bound.wait(), timeout)
        self._seq += 1
        seq = self._seq
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[seq] = fut
        self._send(DELIVER_SM, seq, sm_body(source, dest, data, coding=coding, esm_class=esm_class))
        return await asyncio.wait_for(fut, timeout)

    def messages(self) -> list[tuple[str, list[Sm]]]:
        """The SMS Kannel sent, their parts joined: (text, parts) in order of first part."""
        out: list[tuple[str, list[Sm]]] = []
        groups: dict[tuple[str, int], list[Sm]] = {}
        for sm in self.submitted:
            c = sm.concat
            if c is None:
                out.append((sm.text(), [sm]))
                continue
            key = (sm.destination, c[0])
            if key not in groups:
                groups[key] = []
                out.append(("", groups[key]))
            groups[key].append(sm)
        joined = []
        for text, parts in out:
            if len(parts) > 1 or parts[0].concat is not None:
                parts.sort(key=lambda p: p.concat[2] if p.concat else 0)
                data = b"".join(p.payload for p in parts)
                coding = parts[0].data_coding
                text = data.decode("utf-16-be") if coding == 8 else data.decode("latin-1")
            joined.append((text, parts))
        return joined
