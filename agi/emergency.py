"""Key 0, emergencies: tell the caller the numbers, and put them through if configured.

An ``emergency`` menu option always plays its message first (police 113, fire
114, ambulance 115).  Without ``connect`` the caller then goes back to the
menu, as before.  With ``connect`` a short sub-menu follows: key 1, 2, 3...
dials ``numbers[0]``, ``[1]``, ``[2]``... over the SIP endpoint ``via`` (the
carrier's trunk by default).  A wrong key or silence gets the sub-menu once
more; a second miss reads the numbers out again and returns to the menu.

Nothing else is asked before the call goes out: no queue, no shift, no
blocked-number rule stands between a caller and an emergency service.  The
call record keeps the way (``0:emergency > 1:call:113 > dial:answer``) and
the outcome ``emergency`` once the caller was put through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agi.protocol import AGISession
from core.settings import Hotline, MenuOption, Settings
from dialplan.prompts import emergency_choose_id, message_id, prompt_path

log = logging.getLogger(__name__)

# The dialplan's subroutine run on the service's channel when it answers: it
# records the call and tells the application (callcenter.events.EMERGENCY_ANSWERED).
ANSWERED_CONTEXT = "hotline-emergency-answered"
# How long an emergency number may ring before the caller is told the numbers again.
RING_SECONDS = 60
# How long the AGI session waits for Dial to come back: the call itself.
CALL_SECONDS = 4 * 3600.0


@dataclass(frozen=True)
class Choice:
    """What the sub-menu made of the caller's key."""

    number: str | None  # None: no valid key (silence or wrong, twice)
    steps: tuple[str, ...]  # for the call's menu path


def choose(option: MenuOption, keys: list[str]) -> Choice:
    """Decide from the keys read (at most two tries) which number to dial.

    Pure, for tests: ``keys`` holds what each round of the sub-menu returned
    ('' for silence).
    """
    steps: list[str] = []
    for key in keys[:2]:
        index = int(key) - 1 if key.isdigit() and key != "0" else -1
        if 0 <= index < len(option.numbers):
            number = option.numbers[index]
            steps.append(f"{key}:call:{number}")
            return Choice(number, tuple(steps))
        steps.append(f"{key}:invalid" if key else "silence")
    return Choice(None, tuple(steps))


def endpoint(settings: Settings, option: MenuOption) -> str:
    return option.via or settings.trunk.name


class Emergency:
    """Runs an ``emergency`` option for the IVR: the message, the sub-menu, the dial."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _prompt(self, prompt_id: str, language: str) -> str:
        return prompt_path(self.settings, prompt_id, language)

    async def run(
        self,
        agi: AGISession,
        hotline: Hotline,
        option: MenuOption,
        language: str,
        note: list[str],
    ) -> tuple[str | None, str | None]:
        """Play the message, maybe connect; returns (key pressed meanwhile, number dialled).

        ``note`` (the call's menu path) receives the sub-menu's steps once it
        is decided, before any call goes out.
        """
        digits = "0123456789*#"
        message = self._prompt(message_id(hotline, option.digit), language)
        if not option.connect:
            return await agi.stream_file(message, digits), None
        # the message is interrupted only by the sub-menu's own keys
        subkeys = "".join(str(i + 1) for i in range(len(option.numbers)))
        first = await agi.stream_file(message, subkeys)
        timeout_ms = int(self.settings.ivr.input_timeout_seconds * 1000)
        menu = self._prompt(emergency_choose_id(hotline, option.digit), language)
        keys: list[str] = []
        for _ in range(2):
            if first:
                key, first = first, None
            else:
                key = (await agi.get_data(menu, timeout_ms, 1))[:1]
            keys.append(key)
            if choose(option, keys).number is not None:
                break
        choice = choose(option, keys)
        note.extend(choice.steps)
        if choice.number is None:
            # read the numbers out, then back to the menu
            return await agi.stream_file(message, digits), None
        return None, choice.number

    async def dial(
        self,
        agi: AGISession,
        option: MenuOption,
        number: str,
        language: str,
        recording_base: str | None = None,
    ) -> str:
        """Put the caller through; returns Asterisk's DIALSTATUS (ANSWER, BUSY, ...).

        With ``recording_base`` (the call's), the conversation is recorded from
        the moment the service answers (the dialplan's ``ANSWERED_CONTEXT``).
        """
        await agi.stream_file(self._prompt("emergency_connecting", language))
        via = endpoint(self.settings, option)
        log.warning(
            "emergency: %s put through to %s via %s", agi.env.get("agi_uniqueid"), number, via
        )
        saved = agi.command_timeout
        agi.command_timeout = CALL_SECONDS
        try:
            options = []
            if recording_base:
                uniqueid = agi.env.get("agi_uniqueid", "")
                options = [f"U({ANSWERED_CONTEXT}^{recording_base}^{uniqueid}^{number})"]
            await agi.exec("Dial", f"PJSIP/{number}@{via}", str(RING_SECONDS), *options)
        finally:
            agi.command_timeout = saved
        reply = await agi.command("GET VARIABLE DIALSTATUS")
        return reply.data or "UNKNOWN"
