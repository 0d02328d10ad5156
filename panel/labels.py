"""Words for the identifiers the panel shows: form fields, call outcomes, IVR steps.

The services speak in identifiers (``citizen_phone``, ``abandoned``,
``1:agent > full:silence``); people read words.  The msgids are marked with
:func:`~panel.messages.N_` and translated where they are shown, in the request's
language.  The screen-pop is built outside the panel (``callcenter.presence``)
and put on the page by ``static/panel.js``, so the agent's page receives the
words as a table (:func:`pop_words`) and the script looks the identifiers up
in it, as :func:`path_words` does on the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from callcenter.models import Outcome
from core.settings import Hotline, Settings
from panel.messages import N_

Gettext = Callable[..., str]

# -- form fields (the services' and the API's names) --------------------------------
FIELD_LABELS: dict[str, str] = {
    # tickets
    "channel": N_("Channel"),
    "citizen_phone": N_("Citizen's phone"),
    "citizen_name": N_("Citizen's name"),
    "citizen_address": N_("Address or place"),
    "domain": N_("Domain"),
    "topic": N_("Topic"),
    "level": N_("Handling level"),
    "description": N_("Report"),
    "guidance": N_("Guidance given"),
    "agency_id": N_("Agency"),
    "agency": N_("Agency"),
    "call_id": N_("Call"),
    # signing in with a second factor
    "otp": N_("Code from the authenticator app"),
    "version": N_("Version of the page"),
    "status": N_("Status"),
    "note": N_("Note"),
    "result": N_("Result of the handling"),
    "reason": N_("Reason"),
    # the weekly reconciliation (tickets.reconciliation)
    "decision": N_("Decision"),
    # a block on a number (callcenter.blocklist)
    "days": N_("Days"),
    # a transfer of the live call (panel.api.schemas.TransferIn)
    "target": N_("Transfer to"),
    "draft": N_("Ticket draft"),
    "meeting_at": N_("Date and time"),
    "meeting_place": N_("Place"),
    "letter": N_("Thank-you letter to the citizen"),
    "deadline": N_("Deadline"),
    # several agencies and delegation (tickets.handling)
    "deadline_at": N_("Deadline"),
    "co_agency_ids": N_("Co-handling agencies"),
    "co_agencies": N_("Co-handling agencies"),
    # a co-handling agency's own deadline ("co_deadlines.<agency id>": its row's)
    "co_deadlines": N_("Co-handling agency's deadline"),
    "co_deadline": N_("Co-handling agency's deadline"),
    # history details: the parts closed with the ticket, a report made restricted (or
    # refused to be, and the agencies that held it)
    "parts_closed": N_("Agencies' parts closed with it"),
    "restricted": N_("Restricted"),
    "agencies": N_("Agencies"),
    "part": N_("Agency's part"),
    "withdrawn": N_("Parts withdrawn"),
    "combined": N_("Answers combined"),
    "adopted": N_("Sub-agency's answer adopted"),
    # the supervisors' review (tickets.review): an extension's deadline, a file attached
    "until": N_("New deadline asked for"),
    "attachment": N_("Attachment"),
    "reporter_email": N_("Reporter's email (optional)"),
    "district": N_("District the report is about"),
    "publish_consent": N_("May be published once completed"),
    "identity_consent": N_("The agency may see who reported it"),
    "latitude": N_("Latitude of the place"),
    "longitude": N_("Longitude of the place"),
    # repeat reports (tickets.repeats): the earlier report a ticket is linked to
    "repeat_of": N_("Earlier report of the same matter"),
    # accounts
    "username": N_("User name"),
    "display_name": N_("Name"),
    "role": N_("Role"),
    "password": N_("Password"),
    "current_password": N_("Current password"),
    "new_password": N_("New password"),
    "repeat_password": N_("Repeat the new password"),
    "extension": N_("Extension"),
    "language": N_("Language"),
    "active": N_("Active"),
    # agencies
    "parent_id": N_("Part of"),
    "kind": N_("Kind"),
    "code": N_("Code"),
    "name": N_("Name"),
    "contact_name": N_("Contact person"),
    "phone": N_("Phone"),
    "email": N_("Email"),
    "address": N_("Address"),
    # lists, filters and reports
    "q": N_("Search"),
    "from": N_("From"),
    "to": N_("To"),
    "min": N_("Talk time from"),
    "max": N_("Talk time up to"),
    "day": N_("Day"),
    "week": N_("Week"),
    "month": N_("Month"),
    "section": N_("Part of the report"),
    "page": N_("Page"),
    "per_page": N_("Results per page"),
    "number": N_("Number to call back"),
    "call": N_("Call"),
    # calls: the wrap-up code; a supervisor joining an agent's call
    "wrapup_code": N_("Wrap-up code"),
    "mode": N_("Mode"),
    # the procedures knowledge base
    "kb_article_id": N_("Knowledge-base article"),
    "title": N_("Title"),
    "summary": N_("Summary (what to say first)"),
    "steps": N_("Steps"),
    "documents": N_("Documents required"),
    "fees": N_("Fees"),
    "processing_time": N_("Processing time"),
    "templates": N_("Templates"),
    "keywords": N_("Other words citizens use for it (searched too)"),
    "archived": N_("Archived"),
    "limit": N_("Results per page"),
    # the agency directory's CSV
    "parent_code": N_("Code of the agency it is part of"),
    "file": N_("CSV file"),
    "row": N_("Line"),
}


def field_label(_: Gettext, field: str) -> str:
    """A form field's label in the request's language (its name when it has none); a
    field of one item of a field (``co_deadlines.4``) has the field's label."""
    msgid = FIELD_LABELS.get(field) or FIELD_LABELS.get(field.split(".", 1)[0])
    return _(msgid) if msgid else field


# -- call outcomes (callcenter.models.Outcome) ----------------------------------------
OUTCOMES: dict[str, str] = {
    Outcome.IN_IVR.value: N_("In the menu"),
    Outcome.QUEUED.value: N_("Waiting"),
    Outcome.ANSWERED.value: N_("Answered"),
    Outcome.HANGUP_IVR.value: N_("Hung up in the menu"),
    Outcome.ABANDONED.value: N_("Abandoned while waiting"),
    Outcome.TIMEOUT.value: N_("No agent in time"),
    Outcome.ENDED_IVR.value: N_("Ended by the menu"),
    Outcome.CALLBACK.value: N_("Asked to be called back"),
    Outcome.VOICEMAIL.value: N_("Left a voice message"),
    Outcome.EMERGENCY.value: N_("Put through to an emergency number"),
    Outcome.RESULT_CALL.value: N_("Result call to the citizen"),
    Outcome.OUTBOUND.value: N_("Called by an agent"),
    Outcome.BLOCKED.value: N_("Blocked number: message and key 0 only"),
}


# -- the IVR path (agi/ivr.py Walk.note, agi/overflow.py note_overflow) ---------------
KEYS = "0123456789*#"
# What a menu option does, when the configuration gives it no label of its own.
ACTIONS: dict[str, str] = {
    "agent": N_("Speak with an operator"),
    "info": N_("Information"),
    "emergency": N_("Emergency numbers"),
    "language": N_("Change of language"),
    "repeat": N_("Repeat the menu"),
    "follow": N_("Report follow-up"),
}
# When the overflow offer was heard ("<mode>:<key>"), and what the key meant.
OFFER_MOMENTS: dict[str, str] = {
    "full": N_("Queue already long"),
    "final": N_("Longest wait reached"),
    "queue": N_("While waiting"),
}
OFFER_KEYS: dict[str, str] = {
    "1": N_("asked for a callback"),
    "2": N_("chose a voice message"),
    "silence": N_("pressed no key"),
}
# Steps that are always written the same way.
FIXED_STEPS: dict[str, str] = {
    "silence": N_("No key pressed"),
    "default:agent": N_("No choice: passed to an operator"),
    "default:hangup": N_("No choice: call ended"),
    "goodbye": N_("Call ended after the longest wait"),
    "callback:caller_id": N_("Callback to the caller's number"),
    "callback:typed": N_("Callback to a number typed in"),
    "callback:no_number": N_("Callback: no valid number given"),
    "callback:refused": N_("Callback: number refused"),
    "voice_message": N_("Voice message left"),
    "voice_message:empty": N_("Voice message: nothing recorded"),
    # an emergency number dialled from the menu (agi/emergency.py), and how it went
    "dial:answer": N_("Emergency number answered"),
    "dial:busy": N_("Emergency number busy"),
    "dial:noanswer": N_("Emergency number did not answer"),
    "dial:chanunavail": N_("Emergency number unreachable"),
    "dial:congestion": N_("Emergency number unreachable"),
    # the call of a callback ("callback:<id>"); {n} is the callback's number
    "callback:#": N_("Callback no. {n}"),
    # the report follow-up (agi/follow.py); {n}: how many reports, or a tracking number
    "follow:reports:#": N_("Heard their {n} newest open reports"),
    "follow:none": N_("No open report under the caller's number"),
    "follow:no_caller_id": N_("Follow-up without caller ID"),
    "follow:number:#": N_("Heard report {n}"),
    "follow:unknown:#": N_("No report with number {n}"),
    "follow:wrong_number": N_("Report number keyed wrong"),
    "follow:agent": N_("Asked for an operator after the follow-up"),
    "follow:done": N_("Follow-up over: call ended"),
    "follow:unavailable": N_("Reports could not be read: passed to an operator"),
}
SEPARATOR = " → "
_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


def _option_words(_: Gettext, key: str, name: str) -> str:
    return _("{name} (key {key})", name=name, key=key)


def step_words(settings: Settings, _: Gettext, language: str) -> dict[str, dict[str, str]]:
    """Every IVR step written as words: ``""`` holds the steps of any hotline,
    each hotline's number the names of its own menu options.

    A step ending in a number that has no entry of its own is looked up with
    ``#`` in its place, the number going into ``{n}`` (``callback:12``).
    """
    common: dict[str, str] = {step: _(msgid) for step, msgid in FIXED_STEPS.items()}
    for key in KEYS:
        common[f"{key}:invalid"] = _("Wrong key {key}", key=key)
        common[f"{key}:call:#"] = _("Key {key}: put through to {number}", key=key, number="{n}")
        for action, msgid in ACTIONS.items():
            common[f"{key}:{action}"] = _option_words(_, key, _(msgid))
    for mode, moment in OFFER_MOMENTS.items():
        for key in (*KEYS, "silence"):
            what = _(OFFER_KEYS[key]) if key in OFFER_KEYS else _("pressed key {key}", key=key)
            common[f"{mode}:{key}"] = f"{_(moment)}: {what}"
    table = {"": common}
    for hotline in settings.hotlines:
        table[hotline.number] = _menu_words(hotline, _, language)
    return table


def _menu_words(hotline: Hotline, _: Gettext, language: str) -> dict[str, str]:
    words = {}
    for option in hotline.menu:
        name = option.label.get(language) if option.label else _(ACTIONS[option.action])
        words[f"{option.digit}:{option.action}"] = _option_words(_, option.digit, name)
    return words


def path_words(
    path: str | None, hotline_number: str | None, table: dict[str, dict[str, str]]
) -> str:
    """An IVR path (``1:agent > full:silence``) in words; an unknown step as it is.

    ``static/panel.js`` (``menuWords``) does the same with the same table.
    """
    if not path:
        return ""
    own, common = table.get(hotline_number or "", {}), table.get("", {})

    def one(step: str) -> str:
        found = own.get(step) or common.get(step)
        if found:
            return found
        m = _TRAILING_NUMBER.match(step)
        if m and f"{m.group(1)}#" in common:
            return common[f"{m.group(1)}#"].replace("{n}", m.group(2))
        return step

    return SEPARATOR.join(one(step.strip()) for step in path.split(" > "))


def pop_words(settings: Settings, _: Gettext, language: str) -> dict[str, object]:
    """What the agent's page needs to show a screen-pop in words (see the module docstring)."""
    return {
        "steps": step_words(settings, _, language),
        "outcomes": {outcome: _(msgid) for outcome, msgid in OUTCOMES.items()},
        "hotlines": {h.number: h.name for h in settings.hotlines},
        "separator": SEPARATOR,
    }
