"""Reading the hotline's mailbox over IMAP: :class:`MailboxReader`.

One long-lived task (owned by the application, :meth:`run`) keeps one
connection to the mailbox:

1. connect (implicit TLS; or plain, then ``STARTTLS`` before anything else;
   or plain on loopback), log in, ``SELECT`` the folder and note its
   ``UIDVALIDITY``;
2. ``UID SEARCH UNSEEN`` (or ``ALL`` when stored mail is moved out of the
   folder), then, in batches, ``UID FETCH (UID RFC822.SIZE)`` to learn each
   mail's size and ``BODY.PEEK[]`` (``PEEK``: fetching marks nothing) for the
   ones within ``email.max_message_mb``, ``BODY.PEEK[HEADER]`` for the others;
3. hand each fetched batch to ``store`` (the inbox's, which writes it to the
   database in one transaction and commits, idempotently by the folder,
   UIDVALIDITY and UID and by the Message-ID); only when a batch is stored is
   it marked done on the server:
   ``UID STORE +FLAGS.SILENT (\\Seen)``, or ``UID MOVE`` to ``email.done_folder``.
   A crash or a dropped connection between the two fetches the batch again on
   the next round and ``store`` recognises every mail: nothing is lost, nothing
   is stored twice;
4. wait: ``IDLE`` where the server offers it (a new mail wakes it at once; the
   wait is cut every ``email.poll_seconds`` as a safety net), else a plain sleep
   of ``poll_seconds``; then read again.

A failure of any step closes the connection, is logged and shown by
``hotline status`` (:attr:`state`), and the loop connects again after a pause
that doubles up to a minute.

Why aioimaplib: the maintained asyncio IMAP client (IMAP4rev1, IDLE, UID
commands, literal handling in a protocol object, no thread per connection);
the standard library's ``imaplib`` blocks.

``imap_tls``: ``tls`` (port 993, which RFC 8314 recommends), ``starttls``
(port 143, for a server that offers nothing else) or ``none`` (loopback test
servers).  aioimaplib (2.0.3, the latest) has STARTTLS in its table of commands
but no way to send it and upgrade the connection (its issue #1), so
:func:`starttls` does it here, on asyncio's own ``loop.start_tls`` (as aiosmtplib
does for SMTP): the command goes out in clear, the server's tagged ``OK`` ends
the plain text, the transport under aioimaplib's protocol becomes TLS (the
certificate checked against ``email.ca_file`` and the host's name) and the
capabilities are asked again.  STARTTLS is required, never opportunistic: a
server that does not offer it, refuses it, greets with PREAUTH, or sends
anything in clear after accepting it is refused before the password is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aioimaplib

from core.clock import Clock
from core.settings import Settings
from mail.outgoing import tls_context_of

log = logging.getLogger(__name__)

_FETCH_LINE = re.compile(rb"^\d+ FETCH \((.*)$", re.DOTALL)
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
# one fetch round asks for at most this many mails, of at most this many bytes
# (aioimaplib reads a response's lines recursively: a few hundred per read is safe)
BATCH_COUNT = 100
BATCH_BYTES = 32_000_000


@dataclass(frozen=True)
class Fetched:
    """One mail as the server gave it."""

    folder: str
    uidvalidity: int
    uid: int
    size: int
    raw: bytes
    # only the headers were fetched: the mail is over email.max_message_mb
    headers_only: bool


#: The inbox's side: store the mails of one fetch (commit before returning); raises
#: if it cannot (then none is marked done, and all are read again).
Store = Callable[[list[Fetched]], Awaitable[Any]]


class ImapError(Exception):
    """The server refused a step; the text names it and gives the server's words."""


class StartTlsProtocol(aioimaplib.IMAP4ClientProtocol):
    """aioimaplib's protocol, which also knows where the plain text ends on STARTTLS.

    Once the server's tagged ``OK`` to STARTTLS is in, nothing more may come before
    the TLS handshake (RFC 3501 6.2.1).  Bytes that do (in the same packet or the
    next) are what a man in the middle injects to be read as the server's words in
    the protected session (the "STARTTLS command injection" of CVE-2011-0411 and
    its kin in mail clients): they are never parsed, only counted in
    :attr:`after_starttls`, and :func:`starttls` refuses the connection.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
    ) -> None:
        super().__init__(loop, conn_lost_cb)
        self.plain_closed = False
        self.after_starttls = 0

    def data_received(self, d: bytes) -> None:
        if self.plain_closed:
            self.after_starttls += len(d)
            return
        command = self.pending_sync_command
        if command is not None and command.name == "STARTTLS":
            data = self.incomplete_line + d
            end = _tagged_ok_end(data, command.tag)
            if end is not None:
                self.plain_closed = True
                self.after_starttls += len(data) - end
                self.incomplete_line = b""
                d = data[:end]
        super().data_received(d)


def _tagged_ok_end(data: bytes, tag: str) -> int | None:
    """Where the line ``<tag> OK ...`` ends in ``data`` (after its CRLF), if it is whole."""
    marker = tag.encode("ascii") + b" "
    if data.startswith(marker):
        start = 0
    else:
        found = data.find(b"\r\n" + marker)
        if found < 0:
            return None
        start = found + 2
    end = data.find(b"\r\n", start)
    if end < 0:
        return None
    status = data[start + len(marker) : end].split(b" ", 1)[0].upper()
    return end + 2 if status == b"OK" else None


class ImapClient(aioimaplib.IMAP4):
    """aioimaplib's client on :class:`StartTlsProtocol` (``create_client`` is where the
    library chooses its connection; its own IMAP4_SSL overrides it too)."""

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = StartTlsProtocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


async def starttls(
    protocol: StartTlsProtocol, context: ssl.SSLContext, server_hostname: str, timeout: float
) -> None:
    """Turn the plain connection (greeted, not logged in) into TLS, or refuse it.

    Raises :class:`ImapError`, before anything secret is sent, when the server greeted
    with PREAUTH (a session nobody checked the server of), does not offer STARTTLS,
    refuses it, or sends anything after accepting it; the handshake's own errors (a
    certificate not trusted, a name that does not match) are ``ssl``'s.  The
    capabilities are then asked again: what the server said in clear is not to be
    trusted (RFC 3501 6.2.1).
    """
    if protocol.state != aioimaplib.NONAUTH:
        raise ImapError(
            "STARTTLS: the server greeted the plain connection as already logged in "
            f"({protocol.state}); refused, since email.imap_tls is starttls"
        )
    offered = sorted(str(c) for c in protocol.capabilities)
    if "STARTTLS" not in {c.upper() for c in offered}:
        raise ImapError(
            "STARTTLS: the server does not offer it (it offers "
            f"{' '.join(offered) or 'nothing'}); the password is not sent in clear. "
            'Use email.imap_tls = "tls" with the server\'s TLS port (993), or have '
            "STARTTLS turned on"
        )
    command = aioimaplib.Command(
        "STARTTLS", protocol.new_tag(), loop=protocol.loop, timeout=timeout
    )
    _ok(await protocol.execute(command), "STARTTLS")
    if protocol.after_starttls:
        raise ImapError(
            f"STARTTLS: the server sent {protocol.after_starttls} bytes in clear after "
            "accepting it, before TLS began (a man in the middle?); refused"
        )
    plain = protocol.transport
    # start_tls takes the transport's reading over before its first await, so no byte
    # can reach the protocol in clear from here on
    protocol.plain_closed = False
    protocol.transport = await asyncio.get_running_loop().start_tls(
        plain,
        protocol,
        context,
        server_hostname=server_hostname,
        ssl_handshake_timeout=timeout,
    )
    await protocol.capability()


def _ok(response: Any, step: str) -> Any:
    if response.result != "OK":
        lines = b" ".join(bytes(x) for x in response.lines[-2:]).decode("utf-8", "replace")
        raise ImapError(f"{step}: {response.result} {lines}")
    return response


def parse_fetch(lines: list[Any]) -> list[tuple[int, int | None, bytes | None]]:
    """(uid, size, literal) for each mail of a ``UID FETCH`` response."""
    out: list[tuple[int, int | None, bytes | None]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not isinstance(line, bytes | bytearray):
            continue
        m = _FETCH_LINE.match(bytes(line))
        if not m:
            continue
        head = m.group(1)
        literal: bytes | None = None
        if head.rstrip().endswith(b"}") and i < len(lines):
            literal = bytes(lines[i])
            i += 1
            # the rest of the item list (``UID 7)`` when the server puts it last)
            if i < len(lines) and isinstance(lines[i], bytes | bytearray):
                tail = bytes(lines[i])
                if not _FETCH_LINE.match(tail):
                    head += b" " + tail
                    i += 1
        uid = _UID.search(head)
        size = _SIZE.search(head)
        if uid:
            out.append((int(uid.group(1)), int(size.group(1)) if size else None, literal))
    return out


class MailboxReader:
    """The one reader of the hotline's mailbox (see the module's story)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.ssl_context = ssl_context
        self.wake = asyncio.Event()
        #: what ``hotline status`` and the health check show
        self.state: dict[str, Any] = {
            "connected": False,
            "idle": None,
            "uidvalidity": None,
            "stored": 0,
            "last_round": None,
            "error": None,  # the failure the reader is recovering from (None once connected)
            "failures": 0,  # connections lost or refused since the start
        }
        self._imap: aioimaplib.IMAP4 | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- one connection -----------------------------------------------------

    async def connect(self) -> aioimaplib.IMAP4:
        cfg = self.settings.email
        self._lost = asyncio.Event()

        def lost(exc: Exception | None) -> None:
            self._lost.set()

        context = None
        if cfg.imap_tls != "none":
            context = self.ssl_context or tls_context_of(self.settings)
        # IMAP4 itself (not IMAP4_SSL, which takes no conn_lost_cb) with the TLS context
        imap = ImapClient(
            cfg.imap_host,
            cfg.imap_port,
            timeout=cfg.timeout_seconds,
            conn_lost_cb=lost,
            ssl_context=context if cfg.imap_tls == "tls" else None,
        )
        self._imap = imap
        await self._call(imap.wait_hello_from_server())
        if cfg.imap_tls == "starttls":
            assert context is not None
            try:
                await self._call(
                    starttls(imap.protocol, context, cfg.imap_host, cfg.timeout_seconds)
                )
            except BaseException:
                # not a word more on this connection, not even LOGOUT in clear
                self._imap = None
                if imap.protocol.transport is not None:
                    imap.protocol.transport.close()
                raise
        password = self.settings.email_imap_password.get_secret_value()
        _ok(await self._call(imap.login(cfg.imap_user, password)), "LOGIN")
        # what the server offers once logged in (IDLE, MOVE) replaces what it said before
        await self._call(imap.protocol.capability())
        return imap

    async def _call(self, step: Awaitable[Any]) -> Any:
        """One command, cut short when the connection is lost (no wait for its timeout)."""
        task = asyncio.ensure_future(step)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise ImapError("the server closed the connection")

    async def close(self) -> None:
        imap, self._imap = self._imap, None
        self.state["connected"] = False
        if imap is None:
            return
        if not self._lost.is_set():
            with contextlib.suppress(Exception):
                if imap.has_pending_idle():
                    imap.idle_done()
                await asyncio.wait_for(imap.logout(), 2)
        with contextlib.suppress(Exception):
            if imap.protocol is not None and imap.protocol.transport is not None:
                imap.protocol.transport.close()

    async def select(self, imap: aioimaplib.IMAP4) -> int:
        """SELECT the folder: its UIDVALIDITY."""
        folder = self.settings.email.imap_folder
        response = _ok(await self._call(imap.select(folder)), f"SELECT {folder}")
        for line in response.lines:
            m = _UIDVALIDITY.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if m:
                return int(m.group(1))
        raise ImapError(f"SELECT {folder}: the server gave no UIDVALIDITY")

    async def fetch_round(self, imap: aioimaplib.IMAP4, uidvalidity: int) -> int:
        """Read, store and mark done every mail waiting in the folder: how many."""
        cfg = self.settings.email
        criterion = "ALL" if cfg.done_folder else "UNSEEN"
        response = _ok(
            await self._call(imap.uid_search(criterion, charset=None)), f"UID SEARCH {criterion}"
        )
        uids: list[int] = []
        for line in response.lines[:-1]:
            text = bytes(line).decode("ascii", "replace")
            if text.startswith("SEARCH"):
                text = text[len("SEARCH") :]
            uids.extend(int(x) for x in text.split() if x.isdigit())
        uids.sort()
        done = 0
        for start in range(0, len(uids), BATCH_COUNT):
            done += await self._batch(imap, uidvalidity, uids[start : start + BATCH_COUNT])
        return done

    async def _batch(self, imap: aioimaplib.IMAP4, uidvalidity: int, uids: list[int]) -> int:
        cfg = self.settings.email
        limit = int(cfg.max_message_mb * 1_000_000)
        sizes = parse_fetch(
            _ok(
                await self._call(imap.uid("fetch", _set(uids), "(UID RFC822.SIZE)")),
                "UID FETCH (RFC822.SIZE)",
            ).lines
        )
        size_of = {uid: size or 0 for uid, size, _ in sizes}
        whole = [u for u in uids if u in size_of and size_of[u] <= limit]
        large = [u for u in uids if u in size_of and size_of[u] > limit]
        stored: list[int] = []
        # the whole mails, in groups of at most BATCH_BYTES
        group: list[int] = []
        total = 0
        for uid in [*whole, 0]:
            if uid and (not group or total + size_of[uid] <= BATCH_BYTES):
                group.append(uid)
                total += size_of[uid]
                continue
            if group:
                stored += await self._fetch_store(imap, uidvalidity, group, size_of, False)
            group, total = ([uid], size_of[uid]) if uid else ([], 0)
        if large:
            stored += await self._fetch_store(imap, uidvalidity, large, size_of, True)
        if stored:
            await self.mark_done(imap, stored)
        return len(stored)

    async def _fetch_store(
        self,
        imap: aioimaplib.IMAP4,
        uidvalidity: int,
        uids: list[int],
        size_of: dict[int, int],
        headers_only: bool,
    ) -> list[int]:
        item = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        response = _ok(
            await self._call(imap.uid("fetch", _set(uids), f"(UID {item})")), f"UID FETCH {item}"
        )
        mails = [
            Fetched(
                folder=self.settings.email.imap_folder,
                uidvalidity=uidvalidity,
                uid=uid,
                size=size_of[uid],
                raw=literal,
                headers_only=headers_only,
            )
            for uid, _size, literal in parse_fetch(response.lines)
            if literal is not None and uid in size_of
        ]
        # stored and committed before the server hears of them (a failure here leaves
        # them unmarked: they are read again next round)
        await self.store(mails)
        self.state["stored"] += len(mails)
        return [m.uid for m in mails]

    async def mark_done(self, imap: aioimaplib.IMAP4, uids: list[int]) -> None:
        cfg = self.settings.email
        if cfg.done_folder:
            if "MOVE" in imap.protocol.capabilities:
                _ok(await self._call(imap.uid("move", _set(uids), cfg.done_folder)), "UID MOVE")
                return
            _ok(await self._call(imap.uid("copy", _set(uids), cfg.done_folder)), "UID COPY")
            flags = r"(\Seen \Deleted)"
            _ok(
                await self._call(imap.uid("store", _set(uids), "+FLAGS.SILENT", flags)),
                "UID STORE \\Deleted",
            )
            _ok(await self._call(imap.expunge()), "EXPUNGE")
            return
        _ok(
            await self._call(imap.uid("store", _set(uids), "+FLAGS.SILENT", r"(\Seen)")),
            "UID STORE \\Seen",
        )

    async def wait_for_mail(self, imap: aioimaplib.IMAP4) -> None:
        """Until the server says something changed, ``poll_seconds`` pass or :meth:`poke`."""
        seconds = self.settings.email.poll_seconds
        if not imap.has_capability("IDLE"):
            self.state["idle"] = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_or_lost(), seconds)
            return
        self.state["idle"] = True
        idle = await self._call(imap.idle_start(timeout=seconds))
        push = asyncio.ensure_future(imap.wait_server_push(timeout=seconds + 5))
        woken = asyncio.ensure_future(self._wake_or_lost())
        try:
            await asyncio.wait({push, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, woken):
                task.cancel()
            if self._lost.is_set():
                idle.cancel()  # nobody will answer it
            else:
                if imap.has_pending_idle():
                    imap.idle_done()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(idle, 10)
        if self._lost.is_set():
            raise ImapError("the server closed the connection")

    async def _wake_or_lost(self) -> None:
        wake = asyncio.ensure_future(self.wake.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({wake, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            lost.cancel()
        self.wake.clear()

    async def start(self) -> None:
        """Start reading in the background (the application owns the task)."""
        self._task = asyncio.create_task(self.run(), name="email-reader")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.close()

    def poke(self) -> None:
        """Read the folder now (a test, or ``hotline`` after a configuration change)."""
        self.wake.set()

    # -- the task -----------------------------------------------------------

    async def once(self) -> int:
        """Connect, read everything waiting, disconnect: how many mails were stored."""
        imap = await self.connect()
        try:
            return await self.fetch_round(imap, await self.select(imap))
        finally:
            await self.close()

    async def run(self) -> None:
        """Read the mailbox until cancelled, connecting again after any failure."""
        pause = 1.0
        while True:
            try:
                imap = await self.connect()
                uidvalidity = await self.select(imap)
                self.state.update(connected=True, uidvalidity=uidvalidity, error=None)
                log.info(
                    "email: reading %s on %s (UIDVALIDITY %d)",
                    self.settings.email.imap_folder,
                    self.settings.email.imap_host,
                    uidvalidity,
                )
                pause = 1.0
                while True:
                    n = await self.fetch_round(imap, uidvalidity)
                    self.state["last_round"] = self.clock.now().isoformat()
                    if n:
                        log.info("email: %d mails stored", n)
                    await self.wait_for_mail(imap)
            except asyncio.CancelledError:
                await self.close()
                raise
            except Exception as e:  # a dropped connection, a refusal: try again, say so
                self.state["error"] = f"{type(e).__name__}: {e}"
                self.state["failures"] += 1
                log.warning("email: mailbox %s: %s", self.settings.email.imap_host, e)
                await self.close()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)


def _set(uids: list[int]) -> str:
    return ",".join(str(u) for u in uids)
