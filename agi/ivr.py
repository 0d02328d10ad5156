"""The hotline IVR: greet, run the menu, register the call, pick the queue on duty.

The dialplan answers the call, computes the recording name and calls
``AGI(agi://host:port/ivr,<hotline number>,<recording base>,<linkedid>)``.
This flow sets ``HOTLINE_ROUTE`` (``queue`` or ``hangup``) and, for a queue,
``HOTLINE_QUEUE``; the dialplan then runs Queue().  If the route is not set
(this server down, crashed, or the caller hung up) the dialplan falls back to
the queue of the shift on duty by itself.

The caller ID is known here seconds before the caller reaches a queue:
``on_arrival`` is told at once (the screen-pop starts reading the caller's
history, callcenter/pophistory.py).

After the greeting every caller hears the recorded-call notice; one who cut
it short with a key hears it before joining a queue.  Key 0 (``emergency``)
may put the caller through to 113/114/115 from here (agi/emergency.py).

A caller whose number is on the blocked list (callcenter/blocklist.py, a
lookup in memory) hears a short message and is offered only the hotline's
emergency option, then the call ends: it never reaches the menu or a queue.
A call with no caller ID is never blocked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from agi.emergency import Emergency
from agi.follow import FollowFlow
from agi.protocol import AGIHangup, AGISession
from callcenter.blocklist import BlockCache
from callcenter.models import Outcome
from callcenter.service import CallerId, CallService, sanitize_caller
from callcenter.shifts import on_duty_queue
from core.clock import Clock
from core.settings import Hotline, MenuOption, Settings
from dialplan.prompts import (
    blocked_id,
    emergency_option,
    greeting_id,
    menu_id,
    message_id,
    notice_id,
    prompt_path,
)

log = logging.getLogger(__name__)

# However the keys come (a stuck key, a flood of DTMF), the menu runs at most
# this many rounds before the caller gets the default action.
MAX_ROUNDS = 12


@dataclass
class Walk:
    """The caller's way through the menu."""

    language: str
    steps: list[str] = field(default_factory=list)
    failures: int = 0
    rounds: int = 0
    noticed: bool = False  # heard the recorded-call notice to its end

    def note(self, step: str) -> None:
        self.steps.append(step)

    @property
    def path(self) -> str:
        return " > ".join(self.steps)


@dataclass(frozen=True)
class Route:
    kind: str  # "queue", "hangup" or "emergency" (choice: "emergency:<number>")
    choice: str  # the action that decided it ("agent", "default:agent", "default:hangup")
    digit: str = ""  # the menu key, for "emergency"


class IVR:
    """The ``ivr`` FastAGI route."""

    def __init__(
        self,
        settings: Settings,
        calls: CallService,
        clock: Clock,
        *,
        follow: FollowFlow | None = None,
        on_arrival: Callable[[str, str | None], None] | None = None,
        blocks: BlockCache | None = None,
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.clock = clock
        self.emergency = Emergency(settings)
        # the report follow-up (menu action "follow"); without it an operator answers
        self.follow = follow
        # told (uniqueid, caller's number) when a call arrives: the pop reads ahead
        self.on_arrival = on_arrival
        # the blocked-numbers list's copy in memory (None: nobody is blocked)
        self.blocks = blocks

    def _prompt(self, prompt_id: str, language: str) -> str:
        return prompt_path(self.settings, prompt_id, language)

    async def handle(self, agi: AGISession) -> None:
        args = agi.args + ["", "", ""]
        number, recording_base, linkedid = args[0], args[1] or None, args[2] or None
        uniqueid = agi.env.get("agi_uniqueid", "")
        hotline = self.settings.hotline(number)
        if hotline is None or not uniqueid:
            # The dialplan's fallback handles it; nothing sensible to do here.
            log.error("IVR called for unknown hotline %r (channel %s)", number, uniqueid)
            return
        caller = sanitize_caller(agi.env.get("agi_callerid"), agi.env.get("agi_calleridname"))
        block_id = self._blocked(caller.number)
        if block_id is not None:
            await self._handle_blocked(
                agi, hotline, caller, uniqueid, linkedid, recording_base, block_id
            )
            return
        if self.on_arrival is not None:
            try:
                self.on_arrival(uniqueid, caller.number)
            except Exception:  # noqa: BLE001 - a read ahead; the caller goes on without it
                log.exception("on_arrival failed for call %s", uniqueid)
        # The record is written while the greeting plays: the caller never waits on it.
        opened = asyncio.create_task(
            self.calls.open_call(
                uniqueid=uniqueid,
                linkedid=linkedid,
                hotline_number=hotline.number,
                caller=caller,
                started_at=self.clock.now(),
                language=hotline.language,
                recording_base=recording_base,
            )
        )
        walk = Walk(language=hotline.language)
        route: Route | None = None
        try:
            try:
                route = await self._menu(agi, hotline, walk)
            finally:
                await self._settle(opened, uniqueid)
            while route.kind == "emergency":
                connected, key = await self._put_through(
                    agi, hotline, walk, uniqueid, route, recording_base
                )
                if connected:
                    route = Route("hangup", route.choice)
                    break
                route = None  # not reached: back to the menu
                route = await self._menu(agi, hotline, walk, key)
        except AGIHangup:
            await self.calls.ivr_done(
                uniqueid,
                path=walk.path,
                choice=route.choice if route else None,
                language=walk.language,
                outcome=Outcome.HANGUP_IVR,
                ended_at=self.clock.now(),
            )
            raise
        if route.kind == "queue":
            if not walk.noticed:  # a key cut it short: nobody is recorded unawares
                await agi.stream_file(self._prompt(notice_id(hotline), walk.language))
            queue, shift = on_duty_queue(self.settings, hotline.team, self.clock.now())
            # One round trip; HOTLINE_ROUTE last, as the dialplan reads it.
            await agi.exec(
                "MSet",
                f"CHANNEL(language)={walk.language}",
                f"HOTLINE_LANG={walk.language}",
                f"HOTLINE_QUEUE={queue}",
                "HOTLINE_ROUTE=queue",
            )
            own = agi.own_time
            log.info(
                "call %s routed to %s (%s) in %.2f ms of IVR time, %.2f ms of it ours",
                uniqueid,
                queue,
                walk.path,
                own * 1000,
                (own - agi.asterisk_wait) * 1000,
            )
            # The caller is on the way to the queue; the bookkeeping follows.
            await self.calls.ivr_done(
                uniqueid,
                path=walk.path,
                choice=route.choice,
                language=walk.language,
                queue=queue,
                team_id=hotline.team,
                shift_id=shift.id,
            )
        else:
            await self.calls.ivr_done(
                uniqueid,
                path=walk.path,
                choice=route.choice,
                language=walk.language,
                outcome=Outcome.ENDED_IVR,
                ended_at=self.clock.now(),
            )
            await agi.stream_file(self._prompt("goodbye", walk.language))
            await agi.set_variable("HOTLINE_ROUTE", "hangup")

    def _blocked(self, number: str | None) -> int | None:
        """The active block on the caller's number; any fault lets the call through."""
        if self.blocks is None or not number:
            return None
        try:
            return self.blocks.check(number)
        except Exception:  # noqa: BLE001 - fail open: a caller is never lost to the list
            log.exception("blocklist check failed for %s; call let through", number)
            return None

    async def _handle_blocked(
        self,
        agi: AGISession,
        hotline: Hotline,
        caller: CallerId,
        uniqueid: str,
        linkedid: str | None,
        recording_base: str | None,
        block_id: int,
    ) -> None:
        """The blocked caller: the message, key 0 only (the hotline's emergency option),
        then goodbye.  The record is ``blocked`` (``emergency`` once put through)."""
        log.info("call %s from %s is blocked (block %d)", uniqueid, caller.number, block_id)
        opened = asyncio.create_task(
            self.calls.open_call(
                uniqueid=uniqueid,
                linkedid=linkedid,
                hotline_number=hotline.number,
                caller=caller,
                started_at=self.clock.now(),
                language=hotline.language,
                recording_base=recording_base,
                block_id=block_id,
            )
        )
        walk = Walk(language=hotline.language, steps=["blocked"])
        option = emergency_option(hotline)
        digit = option.digit if option is not None else ""
        timeout_ms = int(self.settings.ivr.input_timeout_seconds * 1000)
        choice: str | None = None
        try:
            try:
                key: str | None = None
                message = self._prompt(blocked_id(hotline), walk.language)
                if option is None:  # nothing to offer: the message alone
                    await agi.stream_file(message)
                # twice at most: the message (with "for an emergency, press 0"), a wait
                for _ in range(2 if option is not None else 0):
                    key = await agi.stream_file(message, digit)
                    if not key:
                        key = await agi.wait_for_digit(timeout_ms)
                    if key == digit:
                        break
                    walk.note(f"{key}:invalid" if key else "silence")
                    key = None
            finally:
                await self._settle(opened, uniqueid)
            if option is not None and key == digit:
                walk.note(f"{digit}:emergency")
                _, number = await self.emergency.run(
                    agi, hotline, option, walk.language, walk.steps
                )
                if number is not None:
                    choice = f"emergency:{number}"
                    route = Route("emergency", choice, option.digit)
                    connected, _ = await self._put_through(
                        agi, hotline, walk, uniqueid, route, recording_base, replay=False
                    )
                    if connected:
                        await self.calls.blocked_done(
                            uniqueid,
                            path=walk.path,
                            choice=choice,
                            language=walk.language,
                            ended_at=self.clock.now(),
                        )
                        await agi.set_variable("HOTLINE_ROUTE", "hangup")
                        return
        except AGIHangup:
            await self.calls.blocked_done(
                uniqueid,
                path=walk.path,
                choice=choice,
                language=walk.language,
                ended_at=self.clock.now(),
            )
            raise
        await self.calls.blocked_done(
            uniqueid,
            path=walk.path,
            choice="blocked",
            language=walk.language,
            ended_at=self.clock.now(),
        )
        await agi.stream_file(self._prompt("goodbye", walk.language))
        await agi.set_variable("HOTLINE_ROUTE", "hangup")

    @staticmethod
    async def _settle(opened: asyncio.Task[None], uniqueid: str) -> None:
        """Wait for the record's insert; a database fault must not cost the caller the call."""
        try:
            await opened
        except Exception:
            log.exception("could not register call %s; routing it anyway", uniqueid)

    async def _put_through(
        self,
        agi: AGISession,
        hotline: Hotline,
        walk: Walk,
        uniqueid: str,
        route: Route,
        recording_base: str | None,
        *,
        replay: bool = True,
    ) -> tuple[bool, str | None]:
        """Dial the emergency number chosen; (reached, a key pressed after a failure).

        A number not reached has the numbers read out again (``replay``)."""
        option = hotline.option(route.digit)
        number = route.choice.partition(":")[2]
        assert option is not None
        await self.calls.emergency_call(
            uniqueid, path=walk.path, choice=route.choice, connected=True
        )
        status = await self.emergency.dial(agi, option, number, walk.language, recording_base)
        walk.note(f"dial:{status.lower()}")
        connected = status == "ANSWER"
        await self.calls.emergency_call(
            uniqueid, path=walk.path, choice=route.choice, connected=connected
        )
        if connected:
            return True, None
        if not replay:
            return False, None
        # the numbers read out once more, for the caller to dial themselves
        message = self._prompt(message_id(hotline, option.digit), walk.language)
        return False, await agi.stream_file(message, "0123456789*#")

    async def _menu(
        self, agi: AGISession, hotline: Hotline, walk: Walk, key: str | None = ""
    ) -> Route:
        """The menu; ``key`` is a key already pressed (None: none, "": greet first)."""
        ivr = self.settings.ivr
        # Any key interrupts a prompt, so a wrong key is heard and answered at once.
        digits = "0123456789*#"
        timeout_ms = int(ivr.input_timeout_seconds * 1000)
        if key == "":
            key = await agi.stream_file(self._prompt(greeting_id(hotline), walk.language), digits)
            walk.noticed = not hotline.recording_notice_enabled
            if not key and not walk.noticed:
                key = await agi.stream_file(self._prompt(notice_id(hotline), walk.language), digits)
                walk.noticed = not key
        while True:
            walk.rounds += 1
            if walk.rounds > MAX_ROUNDS or walk.failures > ivr.max_retries:
                walk.note(f"default:{ivr.default_action}")
                return Route(
                    "queue" if ivr.default_action == "agent" else "hangup",
                    f"default:{ivr.default_action}",
                )
            if not key:
                key = (
                    await agi.get_data(self._prompt(menu_id(hotline), walk.language), timeout_ms, 1)
                )[:1]
            option = hotline.option(key) if key else None
            if not key:
                walk.note("silence")
                walk.failures += 1
                key = await self._say(agi, "no_input", walk, digits)
                continue
            if option is None:
                walk.note(f"{key}:invalid")
                walk.failures += 1
                key = await self._say(agi, "invalid", walk, digits)
                continue
            walk.note(f"{key}:{option.action}")
            key = None
            if option.action == "agent":
                return Route("queue", "agent")
            if option.action == "emergency":
                key, number = await self.emergency.run(
                    agi, hotline, option, walk.language, walk.steps
                )
                if number is not None:
                    return Route("emergency", f"emergency:{number}", option.digit)
                continue

            if option.action == "follow":
                if self.follow is None:
                    return Route("queue", "agent")
                ending = await self.follow.run(agi, walk)
                return Route(ending.route, ending.choice)
            key = await self._act(agi, hotline, option, walk, digits)

    async def _say(self, agi: AGISession, prompt_id: str, walk: Walk, digits: str) -> str | None:
        if walk.failures > self.settings.ivr.max_retries:
            return None  # no point telling them to retry: the default follows
        return await agi.stream_file(self._prompt(prompt_id, walk.language), digits)

    async def _act(
        self, agi: AGISession, hotline: Hotline, option: MenuOption, walk: Walk, digits: str
    ) -> str | None:
        """Options that keep the caller in the menu; returns a key pressed meanwhile."""
        if option.action == "language":
            walk.language = "en" if walk.language == "vi" else "vi"
            await agi.set_variable("CHANNEL(language)", walk.language)
            return None
        if option.action == "info":
            prompt = self._prompt(message_id(hotline, option.digit), walk.language)
            return await agi.stream_file(prompt, digits)
        return None  # "repeat"
