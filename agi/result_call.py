"""The result call's reading: the ``result_call`` FastAGI route.

The result-call dialler rang the citizen and they answered; the dialplan's
``hotline-result-call`` context (recording already) calls
``AGI(agi://host:port/result_call,<result call id>)``.  The steps:

1. "Hello, this is the city hotline calling with the result of your report."
   (``result_call_intro``);
2. the report: "Report number <1 2 3, 4 5 6, 7 8 9, 0>. Handled by <agency>. The
   answer: <result>." The agency's name and its answer are free text, spoken at run
   time (:class:`dialplan.speech.SpeechCache`, through
   :meth:`agi.follow.FollowFlow.say`, which starts the synthesis before the reading);
   an answer longer than ``ivr.follow.result_max_chars`` is cut at a word and followed
   by "the full answer is on the web";
3. with ``result_calls.repeat_key``: "To hear it again, press 1." (1 during the
   reading too), at most :data:`MAX_REPEATS` times;
4. ``HOTLINE_RESULT=heard``: the dialplan goes on to the satisfaction survey
   (``agi/survey.py``, kind ``result_call``, naming the ticket).

Nothing personal is read: :class:`tickets.follow.Followed` holds no name, phone or
address.  When the call or its report cannot be read, ``HOTLINE_RESULT`` stays empty
and the dialplan hangs up (the try counts as answered: the log says what failed).
"""

from __future__ import annotations

import logging

from agi.follow import FollowFlow
from agi.protocol import AGIHangup, AGISession
from agi.report_speech import Fragment, Part, Spoken, cut, number_parts, text_language
from core.settings import Settings
from dialplan.prompts import prompt_path
from tickets.follow import Followed, FollowQueries
from tickets.result_calls import ResultCallService

log = logging.getLogger(__name__)

REPEAT_KEY = "1"
# However often the citizen presses 1, the reading ends after this many repeats.
MAX_REPEATS = 3


def result_parts(report: Followed, *, language: str, result_max_chars: int) -> list[Part]:
    """What is read of the report: its number, the agency and its answer (no I/O)."""
    parts: list[Part] = [Fragment("result_call_report"), *number_parts(report.number)]
    if report.agency:
        agency = " ".join(report.agency.split())
        parts += [Fragment("result_call_agency"), Spoken(agency, text_language(agency, language))]
    if report.result and report.result.strip():
        text, was_cut = cut(report.result, result_max_chars)
        parts += [Fragment("result_call_result"), Spoken(text, text_language(text, language))]
        if was_cut:
            parts.append(Fragment("result_call_full_answer"))
    return parts


class ResultCallFlow:
    """The ``result_call`` route; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        calls: ResultCallService,
        reports: FollowQueries,
        reader: FollowFlow,
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.reports = reports
        self.reader = reader

    def _prompt(self, prompt_id: str, language: str) -> str:
        return prompt_path(self.settings, prompt_id, language)

    async def handle(self, agi: AGISession) -> None:
        raw = (agi.args + [""])[0].strip()
        uniqueid = agi.env.get("agi_uniqueid", "")
        language = agi.env.get("agi_language", "vi")
        language = language if language in ("vi", "en") else "vi"
        if not raw.isdigit():
            log.error("result_call called with %r (channel %s)", raw, uniqueid)
            return
        try:
            job = await self.calls.get(int(raw))
            report = await self.reports.by_id(job.ticket_id) if job is not None else None
        except Exception:
            log.exception("result call %s: could not read its report", raw)
            return
        if job is None or report is None:
            log.error("result call %s: no such call (channel %s)", raw, uniqueid)
            return
        parts = result_parts(
            report,
            language=language,
            result_max_chars=self.settings.ivr.follow.result_max_chars,
        )
        try:
            key = await self.reader.say(agi, [Fragment("result_call_intro"), *parts], language)
            for _ in range(MAX_REPEATS):
                if not self.settings.result_calls.repeat_key:
                    break
                if key != REPEAT_KEY:
                    key = (
                        await agi.get_data(
                            self._prompt("result_call_repeat", language), self._timeout_ms, 1
                        )
                    )[:1]
                if key != REPEAT_KEY:
                    break
                log.debug("result call %s: heard again", raw)
                key = await self.reader.say(agi, parts, language)
            await agi.set_variable("HOTLINE_RESULT", "heard")
        except AGIHangup:
            log.debug("citizen %s hung up during the result", uniqueid)

    @property
    def _timeout_ms(self) -> int:
        return int(self.settings.ivr.input_timeout_seconds * 1000)
