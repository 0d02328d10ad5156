"""The directory of agencies tickets are forwarded to, kept by the admins.

Agencies form a tree (city departments, districts, wards under districts,
...): a parent sees its direct sub-agencies' escalated tickets, so the tree
must stay a tree (no agency under itself).  Agencies are deactivated rather
than deleted: old tickets keep pointing at them.  Changes are checked against
the ``version`` the admin read, like tickets.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Database
from tickets.exceptions import (
    CYCLE,
    INACTIVE,
    TAKEN,
    UNKNOWN,
    AgencyNotFound,
    Forbidden,
    InvalidInput,
    VersionConflict,
)
from tickets.models import Agency, AgencyKind
from tickets.schemas import AgencyIn, validate

log = logging.getLogger(__name__)

_FIELDS = tuple(AgencyIn.model_fields)
_KIND_ORDER = {kind.value: i for i, kind in enumerate(AgencyKind)}


@dataclass
class AgencyNode:
    """One agency of ``AgencyService.tree()`` with its sub-agencies."""

    agency: Agency
    children: list[AgencyNode] = field(default_factory=list)


@dataclass(frozen=True)
class Directory:
    """Every agency at one moment (``AgencyService.directory``), with the lookups
    pages need: names by id, district names by code."""

    agencies: tuple[Agency, ...]  # by kind then name, inactive ones too
    names: dict[int, str]
    districts: dict[str, str]


def _order(agency: Agency) -> tuple[int, str, int]:
    # Kinds in their declared order (departments, districts, wards, ...), then by name.
    return (_KIND_ORDER.get(agency.kind, len(_KIND_ORDER)), agency.name.casefold(), agency.id)


# How long a read agency may be reused (see ``AgencyService.get``).
CACHE_SECONDS = 5.0


class AgencyService:
    """Reads the directory for everyone; changes it for admins only."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._cache: dict[int, tuple[float, Agency]] = {}
        self._directory: tuple[float, Directory] | None = None
        # bumped by every change: a read that overlapped one is not kept
        self._generation = 0
        # the one read of the directory in flight: requests that find it old share it
        self._reading: asyncio.Future[Directory] | None = None
        self.db = db
        self.clock = clock

    async def create(self, actor: Actor, data: dict[str, Any]) -> Agency:
        """Add an agency (admins).  The parent must exist and be active; the code unique."""
        self._require_admin(actor, "create_agency")
        form = validate(AgencyIn, data)
        now = self.clock.now()
        try:
            async with self.db.session() as s:
                await self._check_parent(s, None, form.parent_id)
                await self._check_code(s, None, form.code)
                agency = Agency(
                    **{name: _plain(getattr(form, name)) for name in _FIELDS},
                    active=True,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
                s.add(agency)
                await s.flush()
                await s.refresh(agency)
        except IntegrityError:
            # The same code added by another admin between our check and insert.
            if await self._code_used(form.code, None):
                raise InvalidInput.one("code", TAKEN) from None
            raise
        log.info("agency %s (%s) created by %s", agency.code, agency.id, actor.name)
        return agency

    async def update(
        self, actor: Actor, agency_id: int, version: int, data: dict[str, Any]
    ) -> Agency:
        """Change an agency's fields (admins); only the keys given change.

        The result is checked as a whole (so a partial change cannot leave an
        invalid agency); a new parent must exist, be active and not be the
        agency itself or one of its descendants.
        """
        self._require_admin(actor, "update_agency")
        try:
            async with self.db.session() as s:
                agency = await self._load(s, agency_id)
                self._check_version(agency, version)
                current = {name: getattr(agency, name) for name in _FIELDS}
                form = validate(AgencyIn, current | dict(data))
                changes = {
                    name: _plain(getattr(form, name))
                    for name in _FIELDS
                    if _plain(getattr(form, name)) != current[name]
                }
                if not changes:
                    self._forget()
                    return agency
                if "parent_id" in changes:
                    await self._check_parent(s, agency.id, form.parent_id)
                if "code" in changes:
                    await self._check_code(s, agency.id, form.code)
                agency = await self._write(s, agency, version, changes)
        except IntegrityError:
            if "code" in data and await self._code_used(
                str(data["code"]).strip().lower(), agency_id
            ):
                raise InvalidInput.one("code", TAKEN) from None
            raise
        log.info("agency %s changed by %s: %s", agency.code, actor.name, sorted(changes))
        self._forget()
        return agency

    async def deactivate(self, actor: Actor, agency_id: int, version: int | None = None) -> Agency:
        """Stop forwarding to an agency (admins); its tickets and history stay.

        ``version`` is checked when given.  It may be left out: switching the
        flag overwrites nobody's edit, and doing it twice changes nothing.
        """
        return await self._set_active(actor, agency_id, version, False)

    async def reactivate(self, actor: Actor, agency_id: int, version: int | None = None) -> Agency:
        """Undo ``deactivate`` (admins); ``version`` as there."""
        return await self._set_active(actor, agency_id, version, True)

    async def get(self, agency_id: int) -> Agency:
        """The agency, or AgencyNotFound (read-only: a shared, briefly cached copy).

        Every ticket shown names its agency; the cache spares that read.  This
        service's own changes clear it; another process sees them within
        ``CACHE_SECONDS``.
        """
        hit = self._cache.get(agency_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self.db.session() as s:
            agency = await self._load(s, agency_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[agency_id] = (time.monotonic() + CACHE_SECONDS, agency)
        return agency

    async def directory(self) -> Directory:
        """Every agency, inactive ones too, to name them on pages (read-only, shared,
        reused for ``CACHE_SECONDS`` like ``get``): the public pages' one read of it.

        When it is old, one read is made and every request that asks meanwhile
        waits for that one: a busy public side does not read it once for each
        request in flight the moment it expires.
        """
        hit = self._directory
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        reading = self._reading
        if reading is None or reading.get_loop() is not asyncio.get_running_loop():
            self._reading = asyncio.ensure_future(self._read_directory())
            self._reading.add_done_callback(self._read_done)
        return await asyncio.shield(self._reading)

    def _read_done(self, reading: asyncio.Future[Directory]) -> None:
        if self._reading is reading:
            self._reading = None
        if not reading.cancelled():
            reading.exception()  # seen here: whoever waits for it gets it too

    async def _read_directory(self) -> Directory:
        generation = self._generation
        agencies = tuple(await self.list(include_inactive=True))
        found = Directory(
            agencies=agencies,
            names={a.id: a.name for a in agencies},
            districts={a.code: a.name for a in agencies if a.kind == AgencyKind.DISTRICT},
        )
        if generation == self._generation:
            self._directory = (time.monotonic() + CACHE_SECONDS, found)
        return found

    def _forget(self) -> None:
        """What was read of the directory is old (this service changed it)."""
        self._cache.clear()
        self._directory = None
        self._reading = None  # a read in flight may predate the change
        self._generation += 1

    async def list(self, include_inactive: bool = False) -> list[Agency]:
        """All agencies (active ones only unless asked), by kind then name."""
        async with self.db.session() as s:
            query = select(Agency)
            if not include_inactive:
                query = query.where(Agency.active.is_(True))
            agencies = list((await s.scalars(query)).all())
        return sorted(agencies, key=_order)

    # ``builtins.list``: inside the class, ``list`` is the method above.
    async def tree(self, include_inactive: bool = False) -> builtins.list[AgencyNode]:
        """The agencies as a tree, each level by kind then name.

        An agency whose parent is left out (inactive) is shown at the top
        rather than hidden with it.
        """
        agencies = await self.list(include_inactive)
        nodes = {a.id: AgencyNode(a) for a in agencies}
        roots: builtins.list[AgencyNode] = []
        for a in agencies:  # already sorted, so children come out sorted too
            parent = nodes.get(a.parent_id) if a.parent_id is not None else None
            (parent.children if parent else roots).append(nodes[a.id])
        return roots

    # -- helpers ----------------------------------------------------------------

    async def _set_active(
        self, actor: Actor, agency_id: int, version: int | None, active: bool
    ) -> Agency:
        self._require_admin(actor, "deactivate_agency" if not active else "reactivate_agency")
        async with self.db.session() as s:
            agency = await self._load(s, agency_id)
            if version is not None:
                self._check_version(agency, version)
            if agency.active == active:
                self._forget()
                return agency
            # Without a version from the caller, the one just read still guards
            # the write against a change made between this read and the UPDATE.
            agency = await self._write(s, agency, agency.version, {"active": active})
        log.info(
            "agency %s %s by %s",
            agency.code,
            "reactivated" if active else "deactivated",
            actor.name,
        )
        self._forget()
        return agency

    @staticmethod
    def _require_admin(actor: Actor, action: str) -> None:
        if actor.role != Role.ADMIN:
            raise Forbidden(action, actor.role)

    @staticmethod
    def _check_version(agency: Agency, version: int) -> None:
        if agency.version != version:
            raise VersionConflict(None, version, agency.version, agency_id=agency.id)

    async def _load(self, s: AsyncSession, agency_id: int) -> Agency:
        agency = await s.get(Agency, agency_id)
        if agency is None:
            raise AgencyNotFound(agency_id)
        return agency

    async def _write(
        self, s: AsyncSession, agency: Agency, version: int, values: dict[str, Any]
    ) -> Agency:
        result = await s.execute(
            update(Agency)
            .where(Agency.id == agency.id, Agency.version == version)
            .values(**values, version=version + 1, updated_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            actual = await s.scalar(select(Agency.version).where(Agency.id == agency.id))
            raise VersionConflict(None, version, actual, agency_id=agency.id)
        await s.refresh(agency)
        self._forget()
        return agency

    async def _check_parent(
        self, s: AsyncSession, agency_id: int | None, parent_id: int | None
    ) -> None:
        if parent_id is None:
            return
        parent = await s.get(Agency, parent_id)
        if parent is None:
            raise InvalidInput.one("parent_id", UNKNOWN)
        if not parent.active:
            raise InvalidInput.one("parent_id", INACTIVE)
        if agency_id is None:
            return  # a new agency has no descendants
        # Walk up from the new parent: meeting the agency itself means a cycle.
        seen: set[int] = set()
        node: int | None = parent_id
        while node is not None and node not in seen:
            if node == agency_id:
                raise InvalidInput.one("parent_id", CYCLE)
            seen.add(node)
            node = await s.scalar(select(Agency.parent_id).where(Agency.id == node))

    async def _check_code(self, s: AsyncSession, agency_id: int | None, code: str) -> None:
        query = select(Agency.id).where(Agency.code == code)
        if agency_id is not None:
            query = query.where(Agency.id != agency_id)
        if await s.scalar(query) is not None:
            raise InvalidInput.one("code", TAKEN)

    async def _code_used(self, code: str, agency_id: int | None) -> bool:
        async with self.db.session() as s:
            query = select(Agency.id).where(Agency.code == code)
            if agency_id is not None:
                query = query.where(Agency.id != agency_id)
            return await s.scalar(query) is not None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, AgencyKind) else value


async def phone_directory(db: Database) -> builtins.list[tuple[int, str, str | None]]:
    """Active agencies with a phone: (id, name, phone), by name.  Calls may be
    transferred to these numbers (:mod:`callcenter.transfers`), to no other."""
    async with db.session() as s:
        rows = await s.execute(
            select(Agency.id, Agency.name, Agency.phone)
            .where(Agency.active.is_(True), Agency.phone.is_not(None))
            .order_by(Agency.name, Agency.id)
        )
        return [(r[0], r[1], r[2]) for r in rows]
