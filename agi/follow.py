"""The citizen's report follow-up by phone: the IVR menu's ``follow`` action.

1. The caller's own open reports are found by caller ID
   (:meth:`tickets.follow.FollowQueries.open_reports`) and read newest first, at most
   ``ivr.follow.max_reports``; "you have more" when there are more.  No caller ID, or
   no open report: straight to step 2.
2. "To hear another report, key its 10-digit number then #; for an operator press 1."
   The keys go through :class:`agi.keypad.NumberEntry`: a wrong check digit is
   refused ("the number is not right, please key it again") and never looked up; a
   right number nobody has gets "no report with that number"; a right one is read.
3. 1 routes the caller to the queue, like the menu's ``agent`` action (so does a
   database that cannot be read: an operator can still look the report up).  Silence and
   wrong numbers are retried ``ivr.max_retries`` times; then a caller who has heard a
   report is thanked and the call ends, one who has not gets ``ivr.default_action``.

What is read of a report is :func:`agi.report_speech.report_parts`: set-up prompts,
and free text (agency names, answers) spoken at run time by
:class:`dialplan.speech.SpeechCache`.  Its synthesis starts before the reading does,
so it is ready by the time its turn comes; when it is not, "one moment please" is
played rather than silence.  Any key stops the reading: a digit starts the number.

Each step is noted on the call record's menu path (``follow:reports:2``,
``follow:number:<number>``, ``follow:wrong_number``, ...).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from agi.keypad import Entered, NumberEntry
from agi.protocol import AGISession
from agi.report_speech import Fragment, Part, Spoken, report_parts
from callcenter.service import sanitize_caller
from core.clock import Clock
from core.settings import FollowStatuses, Settings
from dialplan.prompts import prompt_path
from dialplan.speech import SpeechCache, SpeechError
from tickets.exceptions import InvalidCode, TicketNotFound
from tickets.follow import Followed, FollowQueries

log = logging.getLogger(__name__)

KEYS = "0123456789*#"
# However the keys come, the follow-up ends after this many entries.
MAX_ROUNDS = 12
# How long a spoken text may keep the caller before "one moment please" is played ...
FIRST_WAIT_SECONDS = 0.8
# ... and at most, before the reading goes on without it.
SPEECH_TIMEOUT_SECONDS = 15.0
STATUSES = set(FollowStatuses.model_fields)


class _Unreadable(Exception):
    """The reports could not be read."""


class Steps(Protocol):
    """The caller's way through the menu (agi.ivr.Walk)."""

    language: str

    def note(self, step: str) -> None: ...


@dataclass(frozen=True)
class Ending:
    """How the follow-up ends: ``route`` "queue" or "hangup", and the choice recorded."""

    route: str
    choice: str


class FollowFlow:
    """Reads reports to the caller; see the module docstring."""

    def __init__(
        self, settings: Settings, reports: FollowQueries, speech: SpeechCache, clock: Clock
    ) -> None:
        self.settings = settings
        self.reports = reports
        self.speech = speech
        self.clock = clock

    def _prompt(self, prompt_id: str, language: str) -> str:
        return prompt_path(self.settings, prompt_id, language)

    @property
    def _timeout_ms(self) -> int:
        return int(self.settings.ivr.input_timeout_seconds * 1000)

    async def run(self, agi: AGISession, walk: Steps) -> Ending:
        """The follow-up, from the menu key to where the caller goes next.

        When the reports cannot be read (the database is away) the caller is told
        nothing wrong: they go to an operator, who can look the report up.
        """
        try:
            return await self._run(agi, walk)
        except _Unreadable:
            walk.note("follow:unavailable")
            return Ending("queue", "follow:unavailable")

    async def _run(self, agi: AGISession, walk: Steps) -> Ending:
        follow = self.settings.ivr.follow
        caller = sanitize_caller(agi.env.get("agi_callerid"))
        heard = 0
        key: str | None = None
        if caller.number is None:
            walk.note("follow:no_caller_id")
            prompts = ["follow_enter"]
        else:
            try:
                found = await self.reports.open_reports(caller.number, follow.max_reports)
            except Exception as e:
                log.exception("could not read the open reports of a caller")
                raise _Unreadable from e
            if not found.reports:
                walk.note("follow:none")
                prompts = ["follow_none", "follow_enter"]
            else:
                walk.note(f"follow:reports:{len(found.reports)}")
                parts: list[Part] = [Fragment("follow_intro")]
                for report in found.reports:
                    parts += self._parts(report, walk.language)
                if found.total > len(found.reports):
                    parts.append(Fragment("follow_more"))
                key = await self.say(agi, parts, walk.language)
                heard = len(found.reports)
                prompts = ["follow_options"]
        failures = 0
        for _ in range(MAX_ROUNDS):
            if key == "#":
                key = None  # "#" during a reading: skip to the question
            entered = await self._enter(agi, prompts, walk.language, key)
            key = None
            next_prompt = "follow_options" if heard else "follow_enter"
            if entered.kind == "operator":
                walk.note("follow:agent")
                return Ending("queue", "follow:agent")
            if entered.kind == "number":
                keyed = await self._find(entered.digits)
                if keyed is not None:
                    walk.note(f"follow:number:{keyed.number}")
                    heard += 1
                    failures = 0
                    key = await self.say(agi, self._parts(keyed, walk.language), walk.language)
                    prompts = ["follow_options"]
                    continue
                walk.note(f"follow:unknown:{entered.digits}")
                prompts = ["follow_unknown", next_prompt]
            elif entered.kind == "wrong":
                walk.note("follow:wrong_number")
                prompts = ["follow_wrong"]
            else:
                walk.note("silence")
                prompts = ["no_input", next_prompt]
            failures += 1
            if failures > self.settings.ivr.max_retries:
                break
        if heard:
            walk.note("follow:done")
            return Ending("hangup", "follow:done")
        action = self.settings.ivr.default_action
        walk.note(f"default:{action}")
        return Ending("queue" if action == "agent" else "hangup", f"default:{action}")

    async def _find(self, digits: str) -> Followed | None:
        try:
            return await self.reports.by_number(digits)
        except (TicketNotFound, InvalidCode):
            return None
        except Exception as e:
            log.exception("could not read a report by its number")
            raise _Unreadable from e

    def _parts(self, report: Followed, language: str) -> list[Part]:
        follow = self.settings.ivr.follow
        return report_parts(
            report,
            language=language,
            tz=self.settings.tz,
            now=self.clock.now(),
            result_max_chars=follow.result_max_chars,
            topics={t.id for t in self.settings.tickets.topics},
            statuses=STATUSES,
        )

    async def _enter(
        self, agi: AGISession, prompts: list[str], language: str, key: str | None
    ) -> Entered:
        """Play ``prompts`` (any key stops them) and read one number entry."""
        entry = NumberEntry()
        if key is None:
            for prompt_id in prompts:
                key = await agi.stream_file(self._prompt(prompt_id, language), KEYS)
                if key:
                    break
            else:
                key = await agi.wait_for_digit(self._timeout_ms)
        operator_ms = int(self.settings.ivr.follow.operator_wait_seconds * 1000)
        while key is not None:
            done = entry.push(key)
            if done is not None:
                return done
            wait = min(operator_ms, self._timeout_ms) if entry.may_be_operator else self._timeout_ms
            key = await agi.wait_for_digit(wait)
        return entry.timeout()

    async def say(self, agi: AGISession, parts: list[Part], language: str) -> str | None:
        """Play ``parts`` in order; the key that stopped them, if any.

        Every spoken text is started first, so that its synthesis runs while the
        fragments before it play.
        """
        tasks: dict[Spoken, asyncio.Future[str]] = {}
        for p in parts:
            if isinstance(p, Spoken) and p not in tasks:
                tasks[p] = asyncio.ensure_future(self.speech.speak(p.text, p.language))
        try:
            previous: Part | None = None
            for part in parts:
                if isinstance(part, Fragment):
                    path: str | None = self._prompt(part.prompt_id, language)
                else:
                    path = await self._ready(agi, tasks[part], language)
                    if path is None and previous == Fragment("follow_result"):
                        path = self._prompt("follow_full_answer", language)
                previous = part
                if path is None:
                    continue
                key = await agi.stream_file(path, KEYS)
                if key:
                    return key
            return None
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    async def _ready(self, agi: AGISession, task: asyncio.Future[str], language: str) -> str | None:
        """The spoken text's file once made; "one moment please" while it is not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SPEECH_TIMEOUT_SECONDS
        await asyncio.wait({task}, timeout=FIRST_WAIT_SECONDS)
        while not task.done() and loop.time() < deadline:
            await agi.stream_file(self._prompt("follow_wait", language))
            await asyncio.wait({task}, timeout=1.0)
        if not task.done():
            log.warning(
                "a spoken text was not ready in %.0f s; read on without it", SPEECH_TIMEOUT_SECONDS
            )
            return None
        try:
            return task.result()
        except (SpeechError, OSError) as e:
            log.warning("could not speak a text: %s", e)
            return None
