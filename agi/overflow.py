"""The overflow menu: a callback that keeps the caller's place, or a voice message.

The dialplan calls ``AGI(agi://host:port/overflow,<mode>,<language>,<joined epoch>,<hotline>)``
where mode is

- ``key-1`` / ``key-2``: the caller pressed 1 or 2 while waiting: the queue's
  periodic announcement makes the offer every ``offer_after_seconds``, and a
  caller who joins a queue already ``queue_length`` long hears it at once (it
  opens their hold sound), so they wait in their place and a hang-up during
  the offer is an abandon from the queue;
- ``full``: the offer before joining, from dialplans rendered before callers
  joined first (a call in progress across ``hotline reload``);
- ``final``: ``queues.max_wait_seconds`` is reached: the offer one last time,
  then goodbye.  Nobody is cut off in silence.

It sets ``HOTLINE_OVERFLOW`` to ``done`` (the call is over: hang up) or
``queue`` (back to the queue, at the caller's place).  When it sets nothing
(this server down) the dialplan requeues, or at the final offer says "all
operators are busy" and goodbye.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from datetime import UTC, datetime
from pathlib import Path

from agi.protocol import AGIHangup, AGISession
from callcenter.callbacks import CallbackService, valid_callback_number, voicemail_path
from callcenter.service import sanitize_caller
from core.clock import Clock
from core.settings import Settings
from dialplan.prompts import prompt_path

log = logging.getLogger(__name__)

MAX_NUMBER_DIGITS = 15
# Record(): seconds of silence that end a message
SILENCE_SECONDS = 5


def _seconds(path: Path) -> float | None:
    """Length of a recorded wav, or None when there is none worth keeping."""
    try:
        with wave.open(str(path)) as w:
            return float(w.getnframes()) / float(w.getframerate())
    except (OSError, EOFError, wave.Error):
        return None


class OverflowMenu:
    """The ``overflow`` FastAGI route."""

    def __init__(self, settings: Settings, callbacks: CallbackService, clock: Clock) -> None:
        self.settings = settings
        self.callbacks = callbacks
        self.clock = clock

    def _prompt(self, prompt_id: str, language: str) -> str:
        return prompt_path(self.settings, prompt_id, language)

    @property
    def _timeout_ms(self) -> int:
        return int(self.settings.ivr.input_timeout_seconds * 1000)

    def _choices(self) -> str:
        o = self.settings.queues.overflow
        return ("1" if o.callbacks else "") + ("2" if o.voice_messages else "")

    async def handle(self, agi: AGISession) -> None:
        args = agi.args + ["", "", "", ""]
        mode, language, joined_raw, hotline = args[0], args[1] or "vi", args[2], args[3]
        language = language if language in ("vi", "en") else "vi"
        uniqueid = agi.env.get("agi_uniqueid", "")
        joined = _epoch(joined_raw)
        final = mode == "final"
        try:
            choice = mode.removeprefix("key-") if mode.startswith("key-") else None
            if choice is None:
                prompt = "overflow_final" if final else "overflow_offer"
                choice = (await agi.get_data(self._prompt(prompt, language), self._timeout_ms, 1))[
                    :1
                ]
                await self.callbacks.note_overflow(uniqueid, f"{mode}:{choice or 'silence'}")
            else:
                await self.callbacks.note_overflow(uniqueid, f"queue:{choice}")
            if choice not in self._choices() or not choice:
                await self._no_choice(agi, uniqueid, language, final)
                return
            if choice == "1":
                done = await self._callback(agi, uniqueid, language, joined, hotline)
            else:
                done = await self._voice_message(agi, uniqueid, language, hotline)
            if not done:
                await self._no_choice(agi, uniqueid, language, final)
        except AGIHangup:
            log.debug("caller %s hung up in the overflow menu", uniqueid)
            raise

    async def _no_choice(self, agi: AGISession, uniqueid: str, language: str, final: bool) -> None:
        if final:
            await self.callbacks.note_overflow(uniqueid, "goodbye", end_reason="max_wait_goodbye")
            await agi.stream_file(self._prompt("goodbye", language))
            await agi.set_variable("HOTLINE_OVERFLOW", "done")
        else:
            await agi.set_variable("HOTLINE_OVERFLOW", "queue")

    # -- callback -----------------------------------------------------------
    async def _callback(
        self,
        agi: AGISession,
        uniqueid: str,
        language: str,
        joined: datetime | None,
        hotline: str,
    ) -> bool:
        caller = sanitize_caller(agi.env.get("agi_callerid"))
        known = valid_callback_number((caller.number or "").lstrip("+"))
        number = await self.ask_number(agi, uniqueid, known, language)
        if number is None:
            await self.callbacks.note_overflow(uniqueid, "callback:no_number")
            return False
        chosen, source = number
        await self.callbacks.request(
            uniqueid=uniqueid,
            number=chosen,
            number_source=source,
            language=language,
            joined_at=joined,
            hotline_number=hotline or None,
        )
        await self.callbacks.note_overflow(uniqueid, f"callback:{source}")
        await agi.set_variable("HOTLINE_OVERFLOW", "done")
        await agi.stream_file(self._prompt("callback_done", language))
        return True

    async def ask_number(
        self, agi: AGISession, uniqueid: str, known: str | None, language: str
    ) -> tuple[str, str] | None:
        """The number to call back: the caller ID confirmed with 1, or one typed.

        Junk (too short, a star, not a Vietnamese number) is refused and asked
        again, ``ivr.max_retries`` times; then None.
        """
        tries = self.settings.ivr.max_retries + 1
        for _ in range(tries):
            if known:
                key = await agi.stream_file(self._prompt("callback_number", language), "1")
                for d in known:
                    if key:
                        break
                    key = await agi.stream_file(self._prompt(f"digit-{d}", language), "1")
                if key == "1":
                    return known, "caller_id"
                typed = await agi.get_data(
                    self._prompt("callback_confirm", language), self._timeout_ms, MAX_NUMBER_DIGITS
                )
                if typed == "1":
                    return known, "caller_id"
            else:
                typed = await agi.get_data(
                    self._prompt("callback_enter", language), self._timeout_ms, MAX_NUMBER_DIGITS
                )
            if not typed:
                await agi.stream_file(self._prompt("no_input", language))
                continue
            number = valid_callback_number(typed)
            if number is not None:
                return number, "typed"
            log.info("callback number %r refused", typed)
            await self.callbacks.note_overflow(uniqueid, "callback:refused")
            await agi.stream_file(self._prompt("callback_invalid", language))
        return None

    # -- voice message ---------------------------------------------------------
    async def _voice_message(
        self, agi: AGISession, uniqueid: str, language: str, hotline: str
    ) -> bool:
        path = Path(voicemail_path(self.settings, self.clock.now(), uniqueid))
        await asyncio.to_thread(_folder_like_parent, path.parent)
        caller = sanitize_caller(agi.env.get("agi_callerid"))
        seconds = self.settings.queues.overflow.voice_message_seconds
        hung_up = False
        try:
            await agi.stream_file(self._prompt("voice_message_start", language))
            # k: keep what was said if the caller hangs up instead of pressing #
            await agi.exec("Record", str(path), str(SILENCE_SECONDS), str(seconds), "k")
        except AGIHangup:
            hung_up = True
            await asyncio.sleep(0.5)  # Asterisk closes the file as the channel goes
        length = await asyncio.to_thread(_seconds, path)
        if length is None or length <= 0:
            await self.callbacks.note_overflow(uniqueid, "voice_message:empty")
            if hung_up:
                raise AGIHangup("hung up before leaving a message")
            return False
        await self.callbacks.voice_message(
            uniqueid=uniqueid,
            path=str(path),
            seconds=round(length, 1),
            language=language,
            caller_number=caller.number,
            hotline_number=hotline or None,
        )
        await self.callbacks.note_overflow(uniqueid, "voice_message")
        if hung_up:
            raise AGIHangup("hung up after the message")
        await agi.set_variable("HOTLINE_OVERFLOW", "done")
        await agi.stream_file(self._prompt("voice_message_done", language))
        return True


def _epoch(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _folder_like_parent(folder: Path) -> None:
    """Make ``folder`` (and the folders above it) with its parent's mode, not
    our umask's: Asterisk records the voice message into it, as its own user
    sharing the recordings' group (setgid, group-writable: README "Running it
    as a city service")."""
    if folder.is_dir():
        return
    _folder_like_parent(folder.parent)
    mode = folder.parent.stat().st_mode & 0o7777
    try:
        folder.mkdir()
    except FileExistsError:
        return
    folder.chmod(mode)
