"""The blocked-numbers list: numbers whose calls hear a message and get only key 0.

A number with repeated prank or abusive calls is put on the list by a
supervisor or an admin (:meth:`BlocklistService.add`), with a reason and an
end at most ``[blocklist] max_days`` away; it is lifted early with
:meth:`BlocklistService.lift`.  Rows are never deleted: the table is the
list's history (who added, who lifted, when it ran out).

The IVR asks :class:`BlockCache` about every caller: a dictionary lookup in
memory, no I/O on the call's path.  The cache reads the active blocks from
the database at start, when the panel says the list changed (a message on
the bus, :data:`CHANGED_TOPIC`), and every ``refresh_seconds`` whatever
happens (a notice lost while Redis was away).  A failed read keeps the copy
it had: a database outage never stops a call (and a cache that never read
blocks nobody: it fails open).

Numbers are kept in their national form (:func:`core.phones.national_form`),
as call records keep callers; a call with no caller ID is never blocked.

Suggestions (:meth:`BlocklistService.candidates`): numbers whose answered
calls got one of ``candidate_codes`` (prank, abusive) at least
``candidate_calls`` times in ``candidate_days`` days.  Nothing is blocked by
itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update

from callcenter.models import BlockedNumber, Call
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.lifecycle import cancel_and_wait
from core.phones import national_form
from core.settings import Settings

log = logging.getLogger(__name__)

CHANGED_TOPIC = "blocklist.changed"
REASON_MAX = 500
# what people type between digits (the same as tickets' phone fields)
_SEPARATORS = re.compile(r"[\s().\-]")


class BlockState(StrEnum):
    """Where a block stands at a given time."""

    ACTIVE = "active"
    EXPIRED = "expired"
    LIFTED = "lifted"


def state_of(block: BlockedNumber, now: datetime) -> BlockState:
    if block.removed_at is not None and block.removed_at < block.expires_at:
        return BlockState.LIFTED
    return BlockState.ACTIVE if block.expires_at > now else BlockState.EXPIRED


class BlockInvalid(ValueError):
    """A field of a new block is wrong; ``field`` names it, ``problem`` says how."""

    def __init__(self, field: str, problem: str, **details: object) -> None:
        self.field, self.problem, self.details = field, problem, details
        super().__init__(f"{field}: {problem} {details or ''}".strip())


class AlreadyBlocked(Exception):
    """The number already has an active block (``block_id``): lift it first."""

    def __init__(self, number: str, block_id: int) -> None:
        self.number, self.block_id = number, block_id
        super().__init__(f"{number} is already blocked (block {block_id})")


class BlockNotFound(LookupError):
    def __init__(self, block_id: int) -> None:
        self.block_id = block_id
        super().__init__(f"no block {block_id}")


class BlockNotActive(Exception):
    """The block has already ended (lifted or expired): nothing to lift."""

    def __init__(self, block_id: int, state: str) -> None:
        self.block_id, self.state = block_id, state
        super().__init__(f"block {block_id} is {state}")


def clean_number(raw: str) -> str:
    """A number as typed (spaces, dots, dashes, brackets, a leading +) in its national
    form.  Raises :class:`BlockInvalid` naming ``number`` for anything that is not one.
    """
    compact = _SEPARATORS.sub("", raw or "")
    if not compact:
        raise BlockInvalid("number", "required")
    if not re.fullmatch(r"\+?[0-9]+", compact):
        raise BlockInvalid("number", "not_a_number")
    if not 3 <= len(compact.lstrip("+")) <= 20:
        raise BlockInvalid("number", "length")
    return national_form(compact)


@dataclass(frozen=True)
class Candidate:
    """A number suggested for the list: how many of its calls got which codes."""

    number: str
    calls: int
    last_at: datetime
    codes: tuple[str, ...]


class BlocklistService:
    """Adds, lifts and lists blocks; tells the IVR's caches when the list changed."""

    def __init__(
        self, db: Database, settings: Settings, clock: Clock, bus: Bus | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus

    async def add(self, number: str, reason: str, days: int, *, by: str) -> BlockedNumber:
        """Block ``number`` for ``days`` days (1 to ``max_days``), for ``reason``.

        Raises :class:`BlockInvalid` (naming the field) or :class:`AlreadyBlocked`.
        """
        cfg = self.settings.blocklist
        national = clean_number(number)
        reason = (reason or "").strip()
        if not reason:
            raise BlockInvalid("reason", "required")
        if "\x00" in reason:
            raise BlockInvalid("reason", "invalid")
        if len(reason) > REASON_MAX:
            raise BlockInvalid("reason", "too_long", max=REASON_MAX)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= cfg.max_days:
            raise BlockInvalid("days", "range", max=cfg.max_days)
        now = self.clock.now()
        async with self.db.session() as s:
            active = await s.scalar(
                select(BlockedNumber.id).where(
                    BlockedNumber.number == national,
                    BlockedNumber.removed_at.is_(None),
                    BlockedNumber.expires_at > now,
                )
            )
            if active is not None:
                raise AlreadyBlocked(national, active)
            row = BlockedNumber(
                number=national,
                reason=reason,
                created_by=by,
                created_at=now,
                expires_at=now + timedelta(days=days),
            )
            s.add(row)
            await s.flush()
        log.warning(
            "blocklist: %s blocked by %s until %s (%d)", national, by, row.expires_at, row.id
        )
        await self._changed("added", row.id)
        return row

    async def lift(self, block_id: int, *, by: str) -> BlockedNumber:
        """End block ``block_id`` now.  Raises :class:`BlockNotFound` or
        :class:`BlockNotActive` (already lifted or expired)."""
        now = self.clock.now()
        async with self.db.session() as s:
            row = await s.get(BlockedNumber, block_id)
            if row is None:
                raise BlockNotFound(block_id)
            state = state_of(row, now)
            if state != BlockState.ACTIVE:
                raise BlockNotActive(block_id, state.value)
            done = await s.execute(
                update(BlockedNumber)
                .where(BlockedNumber.id == block_id, BlockedNumber.removed_at.is_(None))
                .values(removed_at=now, removed_by=by)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise BlockNotActive(block_id, BlockState.LIFTED.value)
            await s.commit()
            await s.refresh(row)
        log.warning("blocklist: %s lifted by %s (%d)", row.number, by, row.id)
        await self._changed("lifted", row.id)
        return row

    async def _changed(self, what: str, block_id: int) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.publish(CHANGED_TOPIC, {"change": what, "id": block_id})
        except Exception:  # noqa: BLE001 - the caches catch up within refresh_seconds
            log.warning("blocklist: change %s %d not announced; caches catch up", what, block_id)

    async def get(self, block_id: int) -> BlockedNumber | None:
        async with self.db.session() as s:
            return await s.get(BlockedNumber, block_id)

    async def history(self, limit: int = 500) -> list[BlockedNumber]:
        """Every block, newest first: active, lifted and expired alike."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(BlockedNumber)
                .order_by(BlockedNumber.created_at.desc(), BlockedNumber.id.desc())
                .limit(limit)
            )
            return list(rows)

    async def active(self) -> list[BlockedNumber]:
        now = self.clock.now()
        async with self.db.session() as s:
            rows = await s.scalars(
                select(BlockedNumber).where(
                    BlockedNumber.removed_at.is_(None), BlockedNumber.expires_at > now
                )
            )
            return list(rows)

    async def blocked_calls(self) -> dict[int, int]:
        """How many calls met each block (block id -> calls)."""
        async with self.db.session() as s:
            rows = await s.execute(
                select(Call.block_id, func.count())
                .where(Call.block_id.is_not(None))
                .group_by(Call.block_id)
            )
            return {int(b): int(n) for b, n in rows.all()}

    async def candidates(self) -> list[Candidate]:
        """Numbers to suggest: enough prank/abusive codes lately, and not blocked now."""
        cfg = self.settings.blocklist
        if not cfg.candidate_codes:
            return []
        now = self.clock.now()
        since = now - timedelta(days=cfg.candidate_days)
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(
                        Call.caller_number,
                        Call.wrapup_code,
                        func.count(),
                        func.max(Call.started_at),
                    )
                    .where(
                        Call.caller_number.is_not(None),
                        Call.wrapup_code.in_(cfg.candidate_codes),
                        Call.started_at >= since,
                    )
                    .group_by(Call.caller_number, Call.wrapup_code)
                )
            ).all()
            blocked = set(
                await s.scalars(
                    select(BlockedNumber.number).where(
                        BlockedNumber.removed_at.is_(None), BlockedNumber.expires_at > now
                    )
                )
            )
        by_number: dict[str, list[tuple[str, int, datetime]]] = {}
        for number, code, n, last in rows:
            by_number.setdefault(national_form(str(number)), []).append((str(code), int(n), last))
        out = []
        for number, seen in by_number.items():
            total = sum(n for _, n, _ in seen)
            if number in blocked or total < cfg.candidate_calls:
                continue
            codes = tuple(sorted(code for code, _, _ in seen))
            out.append(Candidate(number, total, max(last for _, _, last in seen), codes))
        return sorted(out, key=lambda c: (-c.calls, c.number))


@dataclass(frozen=True)
class ActiveBlock:
    id: int
    expires_at: datetime


class BlockCache:
    """The IVR's copy of the active blocks, kept fresh; see the module docstring.

    Owned by the application: :meth:`start` reads it once and starts the
    refresher, :meth:`stop` ends it.
    """

    def __init__(self, db: Database, settings: Settings, clock: Clock, bus: Bus | None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self._blocks: dict[str, ActiveBlock] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        self.refreshed = asyncio.Event()  # set after each successful read (tests wait on it)
        self.loaded = False

    def check(self, number: str | None) -> int | None:
        """The id of the active block on ``number`` (national form), or None.

        No I/O: a lookup in the copy; an expiry is judged on the clock now.
        """
        if not number:
            return None
        block = self._blocks.get(national_form(number))
        if block is None or block.expires_at <= self.clock.now():
            return None
        return block.id

    async def refresh(self) -> bool:
        """Read the active blocks; on failure keep the copy held (False)."""
        now = self.clock.now()
        try:
            async with self.db.session() as s:
                rows = (
                    await s.execute(
                        select(
                            BlockedNumber.id, BlockedNumber.number, BlockedNumber.expires_at
                        ).where(BlockedNumber.removed_at.is_(None), BlockedNumber.expires_at > now)
                    )
                ).all()
        except Exception as e:  # noqa: BLE001 - fail open: calls go on with the old copy
            log.warning("blocklist: could not read the list (%s); keeping %d", e, len(self._blocks))
            return False
        blocks: dict[str, ActiveBlock] = {}
        for block_id, number, expires_at in rows:
            old = blocks.get(number)
            if old is None or expires_at > old.expires_at:
                blocks[number] = ActiveBlock(int(block_id), expires_at)
        self._blocks = blocks
        self.loaded = True
        self.refreshed.set()
        return True

    def changed(self) -> None:
        """Read the list again soon (the panel changed it)."""
        self._wake.set()

    async def start(self) -> None:
        await self.refresh()
        self._tasks.append(asyncio.create_task(self._run(), name="blocklist-refresh"))
        if self.bus is not None:
            self._tasks.append(asyncio.create_task(self._listen(self.bus), name="blocklist-listen"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.bus is not None and len(self._tasks) > 1:
            await self.bus.stop_listening(self._tasks[1])
        await cancel_and_wait(self._tasks, "blocklist cache")
        self._tasks = []

    async def _listen(self, bus: Bus) -> None:
        async for _topic, _data in bus.listen([CHANGED_TOPIC], self.listening):
            self.changed()

    async def _run(self) -> None:
        interval = self.settings.blocklist.refresh_seconds
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass
            self._wake.clear()
            self.refreshed.clear()
            await self.refresh()
