"""What a caller hears of one report: a list of parts, built without any I/O.

A part is either a :class:`Fragment`, a prompt made at set-up (``follow_report``,
``digit-4``, ``topic-flooding``, ``status-forwarded``, ``day-15``, ...: see
:func:`dialplan.prompts.follow_texts`), or :class:`Spoken` free text that is only known
during the call (the agency's name, its answer), spoken at run time
(:mod:`dialplan.speech`).  For one report, in the caller's language:

    Report number <1 2 3, 4 5 6, 7 8 9, 0>. Topic <topic>. Status <status>.
    [Handled by <agency>.] [Answer due by <day> <month>. [The answer is overdue.]]
    [Meeting on <day> <month>.] [The answer: <result, cut>. [The full answer is on the web.]]

The parts come from :class:`tickets.follow.Followed`, which holds no name, phone or
address: none can be read out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from tickets.follow import Followed
from tickets.models import DEADLINE_STATUSES, Status
from tickets.numbers import format_number

_DEADLINE = {s.value for s in DEADLINE_STATUSES}
# A result is read once the agency answered (kept when the report is closed).
_WITH_RESULT = {Status.ANSWERED.value, Status.CLOSED.value}
# Letters outside ASCII: text written in Vietnamese (agency names, answers).
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")


@dataclass(frozen=True)
class Fragment:
    """A prompt made at set-up, by id."""

    prompt_id: str


@dataclass(frozen=True)
class Spoken:
    """Free text spoken at run time."""

    text: str
    language: str


Part = Fragment | Spoken


def number_parts(number: str) -> list[Fragment]:
    """A tracking number digit by digit, in its groups (``123 456 789 0``)."""
    return [Fragment(f"digit-{d}") for group in format_number(number).split() for d in group]


def date_parts(moment: datetime, tz: ZoneInfo) -> list[Fragment]:
    """A day as day and month in local time ("ngày 15 tháng 12", "the 15th of December")."""
    local = moment.astimezone(tz)
    return [Fragment(f"day-{local.day}"), Fragment(f"month-{local.month}")]


def cut(text: str, max_chars: int) -> tuple[str, bool]:
    """``text`` cut to at most ``max_chars`` at a word (or sentence) end; whether it was cut."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text, False
    head = text[: max_chars + 1]
    # end at the last sentence end if one is far enough in, else at the last space
    sentence = max(head.rfind(". "), head.rfind("! "), head.rfind("? "), head.rfind("; "))
    if sentence >= max_chars // 2:
        return head[: sentence + 1].rstrip(), True
    space = head.rfind(" ")
    end = space if space > 0 else max_chars
    return head[:end].rstrip(" ,;:-"), True


def text_language(text: str, caller_language: str) -> str:
    """The voice for free text: Vietnamese when it is written in Vietnamese (diacritics),
    whatever the caller chose, else the caller's language."""
    if caller_language != "vi" and _NON_ASCII_LETTER.search(text):
        return "vi"
    return caller_language


def report_parts(
    report: Followed,
    *,
    language: str,
    tz: ZoneInfo,
    now: datetime,
    result_max_chars: int,
    topics: set[str],
    statuses: set[str],
) -> list[Part]:
    """The parts that say ``report`` (see the module docstring).

    ``topics`` and ``statuses`` are those with a fragment: another is left out rather
    than played as a file that does not exist.
    """
    parts: list[Part] = [Fragment("follow_report"), *number_parts(report.number)]
    if report.topic in topics:
        parts += [Fragment("follow_topic"), Fragment(f"topic-{report.topic}")]
    if report.status in statuses:
        parts += [Fragment("follow_status"), Fragment(f"status-{report.status}")]
    if report.agency:
        agency = " ".join(report.agency.split())
        parts += [Fragment("follow_agency"), Spoken(agency, text_language(agency, language))]
    if report.status in _DEADLINE and report.deadline_at is not None:
        parts += [Fragment("follow_deadline"), *date_parts(report.deadline_at, tz)]
        if report.deadline_at < now:
            parts.append(Fragment("follow_overdue"))
    if report.status == Status.MEETING_SCHEDULED.value and report.meeting_at is not None:
        parts += [Fragment("follow_meeting"), *date_parts(report.meeting_at, tz)]
    if report.status in _WITH_RESULT and report.result and report.result.strip():
        text, was_cut = cut(report.result, result_max_chars)
        parts += [Fragment("follow_result"), Spoken(text, text_language(text, language))]
        if was_cut:
            parts.append(Fragment("follow_full_answer"))
    return parts
