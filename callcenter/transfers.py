"""Handing a live call on: blind transfers from the agent's screen (or the API).

Follow a transfer: the workspace's "Transfer" form (or ``POST
/api/v1/calls/{id}/transfers``) -> :meth:`TransferService.blind` checks the
target is one of :meth:`TransferService.targets` (another team's queue, a
supervisor's desk phone, an agency of the directory with a phone, an
emergency number of ``[transfers] emergency_numbers``: never a number
somebody typed, so the trunk cannot be used for toll fraud), that the call is
the asker's and is being talked (Asterisk's channel list is the judge) -> a
chain row (:class:`~callcenter.models.CallTransfer`) -> what the agent wrote
is kept for the next agent's screen-pop (:data:`POP_KEY`,
:class:`callcenter.presence.Presence` adds it to the pop) -> AMI ``Setvar``
on the caller's channel (the number, for the trunk) and ``BlindTransfer`` of
the agent's channel to the dialplan's ``hotline-transfer`` context, whose
extension per target (:func:`dialplan_exten`) queues or dials.

The call stays one recording: each later leg is recorded on the channel of
whoever answered it, appended to the call's own files (the dialplan's gosubs for
a phone or a number, :mod:`callcenter.handover` for a queue's agent and an
attended hand-over).  What Asterisk reports of transfers made from the phones,
and of each leg's answer, is :mod:`callcenter.transfer_events`'s.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from callcenter.models import Call, CallTransfer, TransferKind
from callcenter.shifts import on_duty_queue
from core.ami import AMIClient, AMIError
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.phones import national_form
from core.settings import Settings

log = logging.getLogger(__name__)

CONTEXT = "hotline-transfer"
# the kept copy of what the first agent wrote, read by the next agent's pop
POP_KEY = "transfer.{uniqueid}"
POP_TTL = 4 * 3600
NOTE_MAX = 2000
DRAFT_MAX = 20000
KINDS = ("queue", "agent", "phone", "agency", "emergency")
# the context the agent's phone keys (## blind, *2 attended) and AMI Atxfer use
KEYS_CONTEXT = "hotline-transfer-keys"
# the AMI events a transfer made from a phone is heard by (and the dialplan's
# UserEvents of a transfer's leg, below)
TRANSFER_EVENTS = ("BlindTransfer", "AttendedTransfer", "UserEvent")
# The dialplan's words of a leg that a phone or a number takes (the gosubs of
# [hotline-transfer-leg] on the target's channel; headers Call: the caller's
# uniqueid, Transfer: the chain row when the panel asked, Target: the extension
# or number): it rings, it answered (recorded from then), it is over.
LEG_RING = "HotlineTransferRing"
LEG_ANSWERED = "HotlineTransferAnswered"
LEG_OVER = "HotlineTransferOver"
LEG_EVENTS = (LEG_RING, LEG_ANSWERED, LEG_OVER)
# the ticket form's fields a transfer carries to the next agent (not the phone: the
# caller's number comes with the call)
DRAFT_FIELDS = (
    "citizen_name", "citizen_address", "reporter_email", "description", "district",
    "domain", "topic", "level", "guidance", "agency_id",
)  # fmt: skip

# (agency id, name, phone) of active agencies: the tickets domain's directory,
# injected by the composition root (it sits above this domain)
AgencyPhones = Callable[[], Awaitable[list[tuple[int, str, str | None]]]]


@dataclass(frozen=True)
class Target:
    """Somewhere a call may be handed: ``id`` is ``<kind>:<key>``."""

    kind: str
    key: str
    label: str
    number: str | None = None  # dialled over the trunk (agency, emergency)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True)
class Transferrer:
    """Who asks: the signed-in user, their phone, and whether they supervise."""

    user_id: int | None
    name: str
    extension: str | None
    supervisor: bool = False


class TransferRefused(Exception):
    """The transfer cannot be made; ``reason`` names why (the panel's answer)."""

    REASONS = (
        "disabled", "not_in_call", "not_yours", "unavailable", "failed", "not_consulting",
        "no_consultation",
    )  # fmt: skip

    def __init__(self, reason: str, **details: Any) -> None:
        assert reason in self.REASONS
        self.reason, self.details = reason, details
        super().__init__(f"transfer refused: {reason} {details or ''}".strip())


class UnknownTarget(ValueError):
    """``target`` is not one of the targets offered (a free number is never one)."""

    field = "target"

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__(f"target: {target!r} is not a transfer target")


def trunk_number(raw: str | None) -> str | None:
    """An agency's phone as the trunk dials it (digits, +84 as 0), or None."""
    if not raw:
        return None
    digits = "".join(ch for ch in raw if ch.isdigit() or ch == "+")
    if not digits:
        return None
    national = national_form(digits)
    if not national.isdigit() or not 3 <= len(national) <= 15:
        return None
    return national


def dialplan_exten(target: Target, queue: str | None = None) -> str:
    """The ``hotline-transfer`` extension that carries out ``target``."""
    if target.kind == "queue":
        assert queue is not None
        return f"q-{queue}"
    if target.kind in ("phone", "agent"):
        return f"p-{target.key}"
    return "out"


def keys_exten(target: Target) -> str | None:
    """The digits of ``target`` in :data:`KEYS_CONTEXT` (what AMI Atxfer keys in);
    None for a team's queue: a consultation does not go into a queue."""
    if target.kind in ("phone", "agent", "emergency"):
        return target.key
    if target.kind == "agency":
        return "0"  # the number the application set on the agent's channel
    return None


def from_keys(settings: Settings, exten: str) -> Target | None:
    """What digits keyed in :data:`KEYS_CONTEXT` reached (a transfer from a phone)."""
    for a in settings.agents:
        if a.extension == exten:
            return Target("agent", a.extension, a.name)
    for p in settings.supervision.phones:
        if p.extension == exten:
            return Target("phone", p.extension, p.name)
    if exten in settings.transfers.emergency_numbers:
        return Target("emergency", exten, exten, exten)
    for i, t in enumerate(settings.teams, start=1):
        if exten == f"8{i}":
            return Target("queue", t.id, t.name)
    return None


def extension_of_channel(channel: str | None) -> str | None:
    """``PJSIP/1001-000000a2`` -> ``1001``."""
    if not channel or not channel.startswith("PJSIP/"):
        return None
    return channel[len("PJSIP/") :].rsplit("-", 1)[0] or None


_LOCAL = re.compile(rf"^Local/([0-9*#]+)@{KEYS_CONTEXT}-")


def keyed_target(channel: str | None) -> str | None:
    """The digits of a consultation's channel (``Local/1901@hotline-transfer-keys-...``)."""
    m = _LOCAL.match(channel or "")
    return m.group(1) if m else None


def clean_draft(draft: Any) -> str | None:
    """The ticket form's fields of :data:`DRAFT_FIELDS` as JSON (cut short), or None."""
    if not isinstance(draft, dict):
        return None
    kept = {
        k: str(v)[:4000]
        for k, v in draft.items()
        if k in DRAFT_FIELDS and isinstance(v, str | int | float) and str(v).strip()
    }
    text = json.dumps(kept, ensure_ascii=False) if kept else None
    return text if text is None or len(text) <= DRAFT_MAX else None


class TransferService:
    """Blind transfers over AMI and the chain they leave; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: Bus | None,
        ami: AMIClient | None,
        clock: Clock,
        agencies: AgencyPhones | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.ami = ami
        self.clock = clock
        self.agencies = agencies

    async def targets(self, exclude_team: str | None = None) -> list[Target]:
        """Every target a call may go to now: teams' queues (but the call's own),
        supervisors' phones, agencies with a phone, emergency numbers."""
        s = self.settings
        out = [Target("queue", t.id, t.name) for t in s.teams if t.id != exclude_team]
        out += [Target("agent", a.extension, a.name) for a in s.agents]
        out += [Target("phone", p.extension, p.name) for p in s.supervision.phones]
        if not s.trunk.out_contact:
            return out  # the trunk has nowhere to send calls out: no number is a target
        if self.agencies is not None:
            for agency_id, name, phone in await self.agencies():
                number = trunk_number(phone)
                if number is not None:
                    out.append(Target("agency", str(agency_id), name, number))
        out += [Target("emergency", n, n, n) for n in s.transfers.emergency_numbers]
        return out

    async def resolve(self, target_id: str) -> Target:
        """The target named ``target_id``; :class:`UnknownTarget` when it is none."""
        kind, _, key = (target_id or "").partition(":")
        if kind not in KINDS or not key:
            raise UnknownTarget(target_id)
        for t in await self.targets():
            if t.kind == kind and t.key == key:
                return t
        raise UnknownTarget(target_id)

    async def chain(self, call_id: int) -> list[CallTransfer]:
        """The call's transfers, oldest first."""
        async with self.db.session() as s:
            q = (
                select(CallTransfer)
                .where(CallTransfer.call_id == call_id)
                .order_by(CallTransfer.requested_at, CallTransfer.id)
            )
            return list((await s.scalars(q)).all())

    async def blind(
        self,
        actor: Transferrer,
        call_id: int,
        target_id: str,
        *,
        note: str | None = None,
        draft: Any = None,
    ) -> CallTransfer:
        """Hand call ``call_id`` to ``target_id`` at once; the asker's phone is freed.

        Raises :class:`UnknownTarget` (field ``target``) or
        :class:`TransferRefused` (``disabled``, ``not_in_call``, ``not_yours``,
        ``unavailable``, ``failed``).  The chain row is written before Asterisk
        is asked, and says how it went.
        """
        target, uniqueid, agent = await self._check(actor, call_id, target_id)
        assert self.ami is not None
        agent_channel = await self._agent_channel(agent, uniqueid)
        queue = None
        if target.kind == "queue":
            queue, _shift = on_duty_queue(self.settings, target.key, self.clock.now())
        row = await self._open(
            actor, call_id, uniqueid, agent, target, TransferKind.BLIND, note, draft
        )
        await self._keep_for_pop(row, actor)
        try:
            await self.ami.action(
                {"Action": "Setvar", "Channel": uniqueid, "Variable": "HOTLINE_TRANSFER",
                 "Value": str(row.id)}
            )  # fmt: skip
            await self.ami.action(
                {"Action": "Setvar", "Channel": uniqueid, "Variable": "HOTLINE_TRANSFER_NUMBER",
                 "Value": target.number or ""}
            )  # fmt: skip
            await self.ami.action(
                {
                    "Action": "BlindTransfer",
                    "Channel": agent_channel,
                    "Context": CONTEXT,
                    "Exten": dialplan_exten(target, queue),
                }
            )
        except AMIError as e:
            log.warning("transfer %s of call %s failed: %s", row.id, uniqueid, e)
            await self._close(row.id, "failed", str(e)[:200])
            raise TransferRefused("failed", error=str(e)) from None
        log.info(
            "call %s transferred by %s (%s) to %s (transfer %s)",
            uniqueid, actor.name, agent, target.id, row.id,
        )  # fmt: skip
        return await self._close(row.id, "transferred", queue)

    async def _check(
        self, actor: Transferrer, call_id: int, target_id: str
    ) -> tuple[Target, str, str | None]:
        """The target, the call's uniqueid and agent, once the asker may transfer it."""
        if not self.settings.transfers.enabled:
            raise TransferRefused("disabled")
        if self.ami is None:
            raise TransferRefused("unavailable", error="no connection to Asterisk")
        target = await self.resolve(target_id)
        async with self.db.session() as s:
            call = await s.get(Call, call_id)
            if call is None or call.answered_at is None or call.ended_at is not None:
                raise TransferRefused("not_in_call", call_id=call_id)
            if not actor.supervisor and call.agent_extension != actor.extension:
                raise TransferRefused("not_yours", call_id=call_id)
            uniqueid, agent, team = call.uniqueid, call.agent_extension, call.team_id
        if target.kind == "queue" and target.key == team:
            raise UnknownTarget(target_id)  # its own queue: not a transfer
        if target.kind == "agent" and target.key == agent:
            raise UnknownTarget(target_id)  # the agent who has the call
        return target, uniqueid, agent

    # -- attended: consult first, then complete or cancel ---------------------------
    async def attended(
        self,
        actor: Transferrer,
        call_id: int,
        target_id: str,
        *,
        note: str | None = None,
        draft: Any = None,
    ) -> CallTransfer:
        """Put the caller on hold and ring ``target_id`` for the agent to talk to first
        (AMI ``Atxfer``, the phone's own *2); :meth:`complete` hands the caller over,
        :meth:`cancel` takes the agent back to the caller.

        A team's queue is no target here (:class:`UnknownTarget`): a queue is handed
        the caller blind.  Other refusals as :meth:`blind`.
        """
        target, uniqueid, agent = await self._check(actor, call_id, target_id)
        digits = keys_exten(target)
        if digits is None:
            raise UnknownTarget(target_id)
        assert self.ami is not None
        agent_channel = await self._agent_channel(agent, uniqueid)
        row = await self._open(
            actor, call_id, uniqueid, agent, target, TransferKind.ATTENDED, note, draft
        )
        await self._keep_for_pop(row, actor)
        try:
            # inherited by the consultation's channel, which dials it ("0")
            await self.ami.action(
                {"Action": "Setvar", "Channel": agent_channel,
                 "Variable": "__HOTLINE_TRANSFER_NUMBER", "Value": target.number or ""}
            )  # fmt: skip
            await self.ami.action(
                {"Action": "Setvar", "Channel": uniqueid, "Variable": "HOTLINE_TRANSFER",
                 "Value": str(row.id)}
            )  # fmt: skip
            # ... and on the consultation's (the ring of an agent's pop names this row)
            await self.ami.action(
                {"Action": "Setvar", "Channel": agent_channel,
                 "Variable": "__HOTLINE_TRANSFER", "Value": str(row.id)}
            )  # fmt: skip
            # "... successfully queued": panoramisk would wait for a list (KeyError 'async')
            await self.ami.action(
                {"Action": "Atxfer", "Channel": agent_channel, "Context": KEYS_CONTEXT,
                 "Exten": digits}, as_list=False,
            )  # fmt: skip
        except AMIError as e:
            log.warning("attended transfer %s of call %s failed: %s", row.id, uniqueid, e)
            await self._close(row.id, "failed", str(e)[:200])
            raise TransferRefused("failed", error=str(e)) from None
        log.info(
            "call %s: %s (%s) consults %s (transfer %s)",
            uniqueid, actor.name, agent, target.id, row.id,
        )  # fmt: skip
        return await self._close(row.id, None, agent_channel, done=False)

    async def consulting(self, extension: str | None) -> CallTransfer | None:
        """The attended transfer ``extension`` has under way (asked from the panel), if any."""
        if not extension:
            return None
        async with self.db.session() as s:
            row = await s.scalar(
                select(CallTransfer)
                .where(
                    CallTransfer.from_extension == extension,
                    CallTransfer.kind == TransferKind.ATTENDED,
                    CallTransfer.result.is_(None),
                )
                .order_by(CallTransfer.id.desc())
            )
            if row is not None:
                s.expunge(row)
            return row

    async def _consulting(self, actor: Transferrer, transfer_id: int) -> CallTransfer:
        async with self.db.session() as s:
            row = await s.get(CallTransfer, transfer_id)
            if row is None or row.kind != TransferKind.ATTENDED or row.result is not None:
                raise TransferRefused("no_consultation", transfer_id=transfer_id)
            if not actor.supervisor and row.from_extension != actor.extension:
                raise TransferRefused("not_yours", transfer_id=transfer_id)
            s.expunge(row)
            return row

    async def complete(self, actor: Transferrer, transfer_id: int) -> CallTransfer:
        """Hand the caller to the consulted target: the agent's leg hangs up and
        Asterisk bridges the caller with the target (features.conf atxferdropcall=no)."""
        row = await self._consulting(actor, transfer_id)
        if self.ami is None:
            raise TransferRefused("unavailable", error="no connection to Asterisk")
        try:
            await self.ami.action({"Action": "Hangup", "Channel": row.detail or ""})
        except AMIError as e:
            raise TransferRefused("failed", error=str(e)) from None
        log.info("transfer %s of call %s completed by %s", row.id, row.call_uniqueid, actor.name)
        return await self._close(row.id, "transferred", row.detail, answered=True)

    async def cancel(self, actor: Transferrer, transfer_id: int) -> CallTransfer:
        """End the consultation: the target's leg hangs up, the agent is back with the
        caller (AMI ``CancelAtxfer``, the phone's *1)."""
        row = await self._consulting(actor, transfer_id)
        if self.ami is None:
            raise TransferRefused("unavailable", error="no connection to Asterisk")
        try:
            await self.ami.action(
                {"Action": "CancelAtxfer", "Channel": row.detail or ""}, as_list=False
            )
        except AMIError as e:
            raise TransferRefused("failed", error=str(e)) from None
        log.info("transfer %s of call %s cancelled by %s", row.id, row.call_uniqueid, actor.name)
        return await self._close(row.id, "cancelled", row.detail)

    async def _agent_channel(self, agent: str | None, uniqueid: str) -> str:
        """The agent's channel bridged to the caller's, or ``not_in_call``."""
        assert self.ami is not None
        try:
            events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        except AMIError as e:
            raise TransferRefused("unavailable", error=str(e)) from None
        channels = [e for e in events if e.get("Event") == "CoreShowChannel"]
        caller = next((c for c in channels if c.get("Uniqueid") == uniqueid), None)
        bridge = caller.get("BridgeId") if caller else None
        if not bridge or not agent:
            raise TransferRefused("not_in_call", uniqueid=uniqueid)
        for c in channels:
            name = str(c.get("Channel", ""))
            if name.startswith(f"PJSIP/{agent}-") and c.get("BridgeId") == bridge:
                return name
        raise TransferRefused("not_in_call", uniqueid=uniqueid)

    async def _open(
        self,
        actor: Transferrer,
        call_id: int,
        uniqueid: str,
        agent: str | None,
        target: Target,
        kind: TransferKind,
        note: str | None,
        draft: Any,
    ) -> CallTransfer:
        row = CallTransfer(
            call_id=call_id,
            call_uniqueid=uniqueid,
            kind=kind.value,
            target_kind=target.kind,
            target=target.key,
            target_label=target.label[:200],
            number=target.number,
            from_extension=agent,
            user_id=actor.user_id,
            username=actor.name[:100],
            note=(note or "").strip()[:NOTE_MAX] or None,
            draft=clean_draft(draft),
            requested_at=self.clock.now(),
        )
        async with self.db.session() as s:
            s.add(row)
            await s.flush()
            s.expunge(row)
        return row

    async def _close(
        self,
        row_id: int,
        result: str | None,
        detail: str | None,
        *,
        done: bool = True,
        answered: bool = False,
    ) -> CallTransfer:
        """Write how the transfer went; ``answered``: its target talks to the caller
        from now (a completed consultation)."""
        async with self.db.session() as s:
            row = await s.get(CallTransfer, row_id)
            assert row is not None
            row.result, row.detail = result, detail
            if done:
                row.done_at = row.done_at or self.clock.now()
            if answered:
                row.answered_at = row.answered_at or row.done_at
            await s.flush()
            s.expunge(row)
            return row

    async def _keep_for_pop(self, row: CallTransfer, actor: Transferrer) -> None:
        """What the next agent's screen-pop shows of this transfer."""
        if self.bus is None:
            return
        payload = {
            "id": row.id,
            "kind": row.kind,
            "from_extension": row.from_extension,
            "by": actor.name,
            "note": row.note,
            "draft": json.loads(row.draft) if row.draft else None,
            "at": row.requested_at.isoformat(),
        }
        try:
            await self.bus.keep(POP_KEY.format(uniqueid=row.call_uniqueid), payload, POP_TTL)
        except Exception:  # noqa: BLE001 - Redis away: the transfer goes on, the pop is poorer
            log.exception("transfer %s: the next agent's screen will not show the note", row.id)
