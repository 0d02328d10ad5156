"""AMI handlers of transfers: those made from the phones themselves, and the legs
the dialplan reports.

Asterisk's ``BlindTransfer`` and ``AttendedTransfer`` events add a phone's ``##``
and ``*2`` transfers to the call's chain (``detail`` = ``phone``) and complete the
panel's attended ones.  The dialplan's :data:`~callcenter.transfers.LEG_ANSWERED`
(the gosub that runs when a transferred call's phone or number answers) begins
the next leg: the chain row's ``answered_at``, from which the talk time counts
(:mod:`callcenter.legs`), and the agent the record names.  The chain and the
record are this domain's tables; the panel's transfers are written by
:class:`~callcenter.transfers.TransferService`.
"""

from __future__ import annotations

import logging

from sqlalchemy import or_, select

from callcenter.models import Call, CallTransfer, TransferKind, call_to_change
from callcenter.transfers import (
    KEYS_CONTEXT,
    LEG_ANSWERED,
    extension_of_channel,
    from_keys,
    keyed_target,
)
from core.ami import AMIClient, Event, event_time
from core.clock import Clock
from core.db import Database
from core.settings import Settings

log = logging.getLogger(__name__)


class TransferEvents:
    """The chain and the record, as Asterisk says transfers and their legs went."""

    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(["BlindTransfer", "AttendedTransfer"], self.on_transfer)
        ami.subscribe(["UserEvent"], self.on_leg)

    async def on_leg(self, e: Event) -> None:
        """A phone or a number a blind transfer rang answered: the leg it begins is
        talked from now (its chain row's ``answered_at``), and an agent who took the
        call is the one the record names (their wrap-up to set, as after a queue)."""
        if e.get("UserEvent") != LEG_ANSWERED:
            return
        uniqueid, target = e.get("Call"), e.get("Target") or ""
        if not uniqueid or not target:
            return
        now = event_time(e, self.clock)
        asked = e.get("Transfer") or ""
        async with self.db.session() as s:
            call = await s.scalar(call_to_change(uniqueid))
            if call is None:
                return
            q = select(CallTransfer).where(
                CallTransfer.call_id == call.id,
                CallTransfer.kind == TransferKind.BLIND,
                CallTransfer.answered_at.is_(None),
            )
            if asked.isdigit():
                # the panel's: a phone that answers at once may beat its "transferred"
                q = q.where(
                    CallTransfer.id == int(asked),
                    or_(CallTransfer.result.is_(None), CallTransfer.result == "transferred"),
                )
            else:  # keyed on a phone: the newest transfer to that target
                q = q.where(
                    CallTransfer.result == "transferred",
                    or_(CallTransfer.target == target, CallTransfer.number == target),
                )
            row = await s.scalar(q.order_by(CallTransfer.id.desc()))
            if row is None:
                return  # a consultation (attended: its leg begins at completion)
            row.answered_at = now
            self._names(call, target)
        log.info("call %s: transfer %s answered by %s", uniqueid, row.id, target)

    def _names(self, call: Call, extension: str) -> None:
        """An agent who took the call on their own phone is the one the record names
        (as a queue's agent would be); a supervisor's desk phone or a number is not."""
        agent = next((a for a in self.settings.agents if a.extension == extension), None)
        if agent is not None:
            call.agent_extension, call.agent_name = agent.extension, agent.name

    async def on_transfer(self, e: Event) -> None:
        """A transfer Asterisk made: one from a phone's keys is added to the chain;
        one the panel asked for (its row exists) is completed."""
        if e.get("Event") == "BlindTransfer":
            if str(e.get("IsExternal", "")).lower() == "yes":
                return  # ours (AMI BlindTransfer): written when asked
            uniqueid = e.get("TransfereeUniqueid")
            exten = e.get("Extension") or ""
            if e.get("Context") != KEYS_CONTEXT:
                return
            kind, from_channel = TransferKind.BLIND, e.get("TransfererChannel")
        else:
            uniqueid = e.get("TransfereeUniqueid")
            exten = keyed_target(e.get("TransferTargetChannel")) or ""
            kind, from_channel = TransferKind.ATTENDED, e.get("OrigTransfererChannel")
        if not uniqueid:
            return
        ok = str(e.get("Result", "")).lower() == "success"
        now = event_time(e, self.clock)
        async with self.db.session() as s:
            call = await s.scalar(call_to_change(uniqueid))
            if call is None:
                return  # not a hotline call (agents calling each other)
            if kind == TransferKind.ATTENDED:
                # the panel's (AMI Atxfer): its row names the agent's channel
                asked = await s.scalar(
                    select(CallTransfer)
                    .where(
                        CallTransfer.call_uniqueid == uniqueid,
                        CallTransfer.kind == TransferKind.ATTENDED,
                        CallTransfer.detail == from_channel,
                    )
                    .order_by(CallTransfer.id.desc())
                )
                if asked is not None:
                    if asked.result is None or not ok:
                        asked.result = "transferred" if ok else "failed"
                        asked.done_at = asked.done_at or now
                    if asked.result == "transferred":
                        # the caller talks to the consulted target from now
                        asked.answered_at = asked.answered_at or asked.done_at
                        self._names(call, asked.target)
                    return
            target = from_keys(self.settings, exten)
            ext = extension_of_channel(from_channel)
            agent = next((a for a in self.settings.agents if a.extension == ext), None)
            s.add(
                CallTransfer(
                    call_id=call.id,
                    call_uniqueid=uniqueid,
                    kind=kind.value,
                    target_kind=target.kind if target else "unknown",
                    target=target.key if target else exten[:64],
                    target_label=(target.label if target else exten)[:200],
                    number=target.number if target else None,
                    from_extension=ext,
                    user_id=None,
                    username=(agent.name if agent else ext or "?")[:100],
                    requested_at=now,
                    done_at=now,
                    result="transferred" if ok else "failed",
                    detail="phone",
                    # a consultation's target talks to the caller from its completion
                    answered_at=now if ok and kind == TransferKind.ATTENDED else None,
                )
            )
            if ok and kind == TransferKind.ATTENDED:
                self._names(call, exten)
        log.info("call %s: %s transfer from %s's phone to %s", uniqueid, kind.value, ext, exten)
