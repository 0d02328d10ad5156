"""The one settings object of the system.

It is read once from the operator's file (``config/hotline.toml`` unless
``HOTLINE_CONFIG`` names another), then secrets come from the environment or
from the generated secrets file (``<state_dir>/secrets.toml``, never
committed).  Everything is validated at load: a wrong value stops the start
with a :class:`ConfigError` whose lines name the key and what is wrong.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import secrets as _secrets
import shutil
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

# The configuration's place inside the home (see :func:`default_home`).
DEFAULT_CONFIG = Path("config/hotline.toml")
# Where a home is when the package is installed outside a checkout.
SYSTEM_HOME = Path("/var/lib/hotline")
LANGUAGES = ("vi", "en")
_ID = r"^[a-z][a-z0-9_]{0,30}$"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists ``key: what is wrong``.

    ``lines`` gives, for each problem, the line of the file it is on (or near)
    where the file shows one, else None.
    """

    def __init__(
        self, source: str, problems: list[str], lines: list[int | None] | None = None
    ) -> None:
        self.source = source
        self.problems = problems
        self.lines = lines or [None] * len(problems)
        shown = "\n".join(
            f"  - line {n}: {p}" if n else f"  - {p}"
            for p, n in zip(problems, self.lines, strict=True)
        )
        super().__init__(f"invalid configuration in {source}:\n{shown}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalText(_Model):
    """A text in Vietnamese (required) and English (optional)."""

    vi: Annotated[str, Field(min_length=1, max_length=2000)]
    en: Annotated[str | None, Field(default=None, max_length=2000)] = None

    def get(self, language: str) -> str:
        return (self.en if language == "en" else None) or self.vi


class Shift(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    name: str
    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        if isinstance(v, str) and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError("must be a time written HH:MM (00:00 to 23:59)")
        return v


class Team(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    name: str
    # the agents (extensions) who work this team's SMS desk (the inbox of SMS and voice
    # messages); empty: every agent of the team, as before the desks had people of their own
    sms_desk: list[Annotated[str, Field(pattern=r"^\d{2,8}$")]] = []


class Agent(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    extension: Annotated[str, Field(pattern=r"^\d{2,8}$")]
    team: str
    shift: str


MenuAction = Literal["agent", "emergency", "language", "info", "repeat", "follow"]


class MenuOption(_Model):
    """One key of an IVR menu.

    ``agent`` queues the caller for the team on duty; ``emergency`` plays
    ``message`` (dial 113/114/115) and goes back to the menu, or with
    ``connect`` puts the caller through to the number chosen; ``language``
    switches Vietnamese <-> English and replays the menu; ``info`` plays
    ``message`` and goes back to the menu; ``repeat`` replays the menu;
    ``follow`` reads the caller's open reports and any report keyed by its
    tracking number (``ivr.follow``).
    ``label`` is the option's short name on screens (the agent's screen-pop
    shows what the caller chose); without one the panel names the action.
    """

    digit: Annotated[str, Field(pattern=r"^[0-9*#]$")]
    action: MenuAction
    prompt: LocalText
    message: LocalText | None = None
    label: LocalText | None = None
    # emergency only: after the message, keys 1, 2, 3... put the caller
    # through to numbers[0], [1], [2]... over the SIP endpoint ``via`` (the
    # trunk's name when not set); ``choose`` is that sub-menu's prompt (by
    # default one sentence per number, agi/emergency.py)
    connect: bool = False
    numbers: Annotated[
        list[Annotated[str, Field(pattern=r"^\d{2,15}$")]], Field(min_length=1, max_length=9)
    ] = ["113", "114", "115"]
    via: Annotated[str | None, Field(pattern=_ID)] = None
    choose: LocalText | None = None

    @model_validator(mode="after")
    def _message_needed(self) -> MenuOption:
        if self.action in ("emergency", "info") and self.message is None:
            raise ValueError(f"action {self.action!r} needs a message to play")
        if self.connect and self.action != "emergency":
            raise ValueError("connect: only an 'emergency' option puts callers through")
        return self


class IvrPrompts(_Model):
    """Texts shared by all hotlines' menus."""

    invalid: LocalText
    no_input: LocalText
    connecting: LocalText
    all_busy: LocalText
    goodbye: LocalText
    # The overflow offer (queues.overflow): heard while waiting and at the maximum wait.
    offer_intro: LocalText = LocalText(
        vi="Các điện thoại viên vẫn đang bận.", en="All operators are still busy."
    )
    offer_final: LocalText = LocalText(
        vi="Rất tiếc, chưa có điện thoại viên nào rảnh.",
        en="Sorry, no operator is free yet.",
    )
    offer_callback: LocalText = LocalText(
        vi="Để được gọi lại mà vẫn giữ thứ tự, bấm phím 1.",
        en="To be called back without losing your place, press 1.",
    )
    offer_voice_message: LocalText = LocalText(
        vi="Để để lại lời nhắn, bấm phím 2.", en="To leave a voice message, press 2."
    )
    offer_keep_waiting: LocalText = LocalText(
        vi="Hoặc xin tiếp tục giữ máy.", en="Or please stay on the line."
    )
    # an emergency option with ``connect``: just before the call is put through
    emergency_connecting: LocalText = LocalText(
        vi="Xin giữ máy, đang nối máy.", en="Please hold, putting you through."
    )
    callback_number: LocalText = LocalText(
        vi="Chúng tôi sẽ gọi lại số", en="We will call you back on"
    )
    callback_confirm: LocalText = LocalText(
        vi="Bấm phím 1 để xác nhận, hoặc nhập số khác rồi bấm phím thăng.",
        en="Press 1 to confirm, or enter another number followed by the hash key.",
    )
    callback_enter: LocalText = LocalText(
        vi="Xin nhập số điện thoại để chúng tôi gọi lại, rồi bấm phím thăng.",
        en="Please enter the phone number to call you back on, followed by the hash key.",
    )
    callback_invalid: LocalText = LocalText(
        vi="Số điện thoại không hợp lệ.", en="That phone number is not valid."
    )
    callback_done: LocalText = LocalText(
        vi="Xin cảm ơn. Chúng tôi sẽ gọi lại cho bạn theo đúng thứ tự.",
        en="Thank you. We will call you back in your turn.",
    )
    voice_message_start: LocalText = LocalText(
        vi="Xin để lại lời nhắn sau tiếng bíp, rồi bấm phím thăng.",
        en="Please leave your message after the tone, then press the hash key.",
    )
    voice_message_done: LocalText = LocalText(
        vi="Lời nhắn của bạn đã được ghi lại. Xin cảm ơn.",
        en="Your message has been recorded. Thank you.",
    )
    # The satisfaction survey after a call (hotlines' survey_after_call, agi.survey).
    survey_rate: LocalText = LocalText(
        vi="Xin đánh giá mức độ hài lòng của bạn, từ 1, rất không hài lòng, "
        "đến 5, rất hài lòng. Bấm một phím từ 1 đến 5.",
        en="Please rate how satisfied you are, from 1, very dissatisfied, "
        "to 5, very satisfied. Press a key from 1 to 5.",
    )
    survey_thanks: LocalText = LocalText(
        vi="Xin cảm ơn ý kiến của bạn.", en="Thank you for your feedback."
    )
    survey_reopen_offer: LocalText = LocalText(
        vi="Rất tiếc vì bạn chưa hài lòng. Để mở lại phản ánh của bạn, bấm phím 9.",
        en="We are sorry you are not satisfied. To reopen your report, press 9.",
    )
    survey_reopened: LocalText = LocalText(
        vi="Phản ánh của bạn đã được mở lại và chuyển cho cán bộ phụ trách. Xin cảm ơn.",
        en="Your report has been reopened and passed to a supervisor. Thank you.",
    )


class FollowPrompts(_Model):
    """What the report follow-up (menu action ``follow``) says around each report."""

    intro: LocalText = LocalText(
        vi="Sau đây là các phản ánh đang được xử lý của bạn, mới nhất trước.",
        en="Here are your open reports, newest first.",
    )
    more: LocalText = LocalText(
        vi="Bạn còn phản ánh khác đang được xử lý; điện thoại viên có thể đọc giúp bạn.",
        en="You have more open reports; an operator can go through them with you.",
    )
    none: LocalText = LocalText(
        vi="Chúng tôi không tìm thấy phản ánh nào đang được xử lý của số điện thoại này.",
        en="We found no open report from this phone number.",
    )
    enter: LocalText = LocalText(
        vi="Để nghe một phản ánh, xin bấm mười số của phản ánh, rồi bấm phím thăng. "
        "Để gặp điện thoại viên, bấm phím 1.",
        en="To hear a report, key its 10-digit number, then the hash key. "
        "To speak with an operator, press 1.",
    )
    options: LocalText = LocalText(
        vi="Để nghe phản ánh khác, xin bấm mười số của phản ánh, rồi bấm phím thăng. "
        "Để gặp điện thoại viên, bấm phím 1.",
        en="To hear another report, key its 10-digit number, then the hash key. "
        "To speak with an operator, press 1.",
    )
    wrong: LocalText = LocalText(
        vi="Số phản ánh chưa đúng, xin vui lòng bấm lại.",
        en="The number is not right, please key it again.",
    )
    unknown: LocalText = LocalText(
        vi="Không có phản ánh nào với số này.", en="There is no report with that number."
    )
    wait: LocalText = LocalText(vi="Xin chờ một chút.", en="One moment, please.")
    report: LocalText = LocalText(vi="Phản ánh số", en="Report number")
    topic: LocalText = LocalText(vi="Lĩnh vực", en="Topic")
    status: LocalText = LocalText(vi="Tình trạng", en="Status")
    agency: LocalText = LocalText(vi="Cơ quan xử lý", en="Handled by")
    deadline: LocalText = LocalText(vi="Hạn trả lời", en="Answer due by")
    overdue: LocalText = LocalText(vi="Đã quá hạn trả lời.", en="The answer is overdue.")
    meeting: LocalText = LocalText(vi="Lịch tiếp công dân", en="Meeting on")
    result: LocalText = LocalText(vi="Kết quả trả lời", en="The answer")
    full_answer: LocalText = LocalText(
        vi="Nội dung đầy đủ có trên trang tra cứu phản ánh trên mạng.",
        en="The full answer is on the web status page.",
    )


class FollowStatuses(_Model):
    """How each status of a report is said to the citizen (tickets.models.Status)."""

    new: LocalText = LocalText(
        vi="đang chờ chuyển đến cơ quan xử lý", en="waiting to be sent to the agency in charge"
    )
    pending_approval: LocalText = LocalText(
        vi="đang chờ lãnh đạo phê duyệt", en="waiting for the leaders' approval"
    )
    forwarded: LocalText = LocalText(
        vi="đã chuyển đến cơ quan xử lý", en="sent to the agency in charge"
    )
    accepted: LocalText = LocalText(vi="cơ quan đã tiếp nhận", en="taken on by the agency")
    answered: LocalText = LocalText(vi="đã có kết quả trả lời", en="answered")
    returned: LocalText = LocalText(
        vi="đang được chuyển cho cơ quan phù hợp", en="being passed to the right agency"
    )
    meeting_pending: LocalText = LocalText(
        vi="đang sắp xếp lịch tiếp công dân", en="a meeting is being arranged"
    )
    meeting_scheduled: LocalText = LocalText(
        vi="đã có lịch tiếp công dân", en="a meeting has been arranged"
    )
    proposal: LocalText = LocalText(
        vi="đã được tổng hợp gửi lãnh đạo thành phố", en="passed on to the city's leaders"
    )
    closed: LocalText = LocalText(vi="đã hoàn tất", en="completed")
    reopened: LocalText = LocalText(
        vi="đã được mở lại để xem xét tiếp", en="reopened to be looked at again"
    )


class Follow(_Model):
    """The citizen's report follow-up by phone (menu action ``follow``).

    The caller's open reports are found by caller ID and read newest first, at
    most ``max_reports``; any report can be heard by keying its tracking number.
    Agency names and answers are spoken at run time (espeak-ng), cached in
    ``<prompts_dir>/spoken`` and removed after ``spoken_cache_days`` unused.
    """

    max_reports: Annotated[int, Field(ge=1, le=10)] = 3
    # an agency's answer longer than this is cut (at a word) and the caller sent to the web
    result_max_chars: Annotated[int, Field(ge=40, le=2000)] = 300
    # after a lone "1" (the operator, or the first digit of a number): how long to wait
    operator_wait_seconds: Annotated[float, Field(ge=0.5, le=10)] = 2
    spoken_cache_days: Annotated[int, Field(ge=1, le=3650)] = 90
    prompts: FollowPrompts = FollowPrompts()
    statuses: FollowStatuses = FollowStatuses()


class Ivr(_Model):
    input_timeout_seconds: Annotated[float, Field(gt=0.5, le=30)] = 5
    max_retries: Annotated[int, Field(ge=0, le=5)] = 2
    # What a caller gets once retries are spent: a citizen who cannot use the
    # keypad on a bad line still reaches a person.
    default_action: Literal["agent", "hangup"] = "agent"
    prompts: IvrPrompts
    follow: Follow = Follow()


class Hotline(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    number: Annotated[str, Field(pattern=r"^\d{3,15}$")]
    # Other forms the carrier may send for the same number (84888247247, ...).
    aliases: list[Annotated[str, Field(pattern=r"^\+?\d{3,16}$")]] = []
    name: str
    team: str
    language: Literal["vi", "en"] = "vi"
    greeting: LocalText
    # heard after the greeting, before the menu; every caller an agent takes has heard it
    recording_notice: LocalText = LocalText(
        vi="Cuộc gọi của quý vị được ghi âm để phục vụ công tác giải quyết phản ánh.",
        en="This call is recorded so that your report can be handled.",
    )
    recording_notice_enabled: bool = True
    menu: Annotated[list[MenuOption], Field(min_length=1)]
    # After the agent hangs up, the caller stays on the line for the satisfaction
    # survey (agi.survey): rate 1 to 5, and reopen the report on a low rating.
    survey_after_call: bool = False

    @model_validator(mode="after")
    def _menu(self) -> Hotline:
        digits = [o.digit for o in self.menu]
        dup = sorted({d for d in digits if digits.count(d) > 1})
        if dup:
            raise ValueError(f"menu: key {', '.join(dup)} is used more than once")
        if not any(o.action == "agent" for o in self.menu):
            raise ValueError("menu: needs an option with action 'agent'")
        return self

    def option(self, digit: str) -> MenuOption | None:
        return next((o for o in self.menu if o.digit == digit), None)


class Overflow(_Model):
    """What a waiting caller is offered when the queue is too slow or too long.

    Past ``offer_after_seconds`` of waiting, or on joining a queue that already
    holds ``queue_length`` callers, the caller hears the offer: a callback that
    keeps their place (they confirm their number on the keypad) or a voice
    message.  Whoever is still waiting at ``Queues.max_wait_seconds`` gets the
    offer one last time before the call ends, so nobody is cut off without one.
    """

    enabled: bool = True
    offer_after_seconds: Annotated[int, Field(ge=10, le=3600)] = 120
    queue_length: Annotated[int, Field(ge=1, le=500)] = 10
    callbacks: bool = True
    voice_messages: bool = True
    voice_message_seconds: Annotated[int, Field(ge=10, le=600)] = 120
    # a callback not reached after this many tries ends as "unreachable"
    callback_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    callback_retry_minutes: Annotated[int, Field(ge=1, le=240)] = 10


class ResultCallPrompts(_Model):
    """What the result call says around the report (agi/result_call.py); the report's
    number is read digit by digit, the agency's name and its answer spoken at run time."""

    intro: LocalText = LocalText(
        vi="Xin chào, đây là đường dây nóng của thành phố gọi để thông báo kết quả "
        "giải quyết phản ánh của bạn.",
        en="Hello, this is the city hotline calling with the result of your report.",
    )
    report: LocalText = LocalText(vi="Phản ánh số", en="Report number")
    agency: LocalText = LocalText(vi="Cơ quan xử lý", en="Handled by")
    result: LocalText = LocalText(vi="Kết quả trả lời", en="The answer")
    repeat: LocalText = LocalText(vi="Để nghe lại, bấm phím 1.", en="To hear it again, press 1.")


class ResultCalls(_Model):
    """Calling the citizen back with the result of a level-2 or level-3 report.

    When the agency's answer is recorded (the ticket becomes ``answered``) and the
    report has the citizen's phone, a call is placed through the trunk within
    ``hours`` (local time): the result is read, then the satisfaction survey.  Busy,
    no answer or a failure is tried again after ``retry_minutes``, up to
    ``max_attempts`` times.  Needs ``trunk.contact`` (the calls go out through it).
    """

    enabled: bool = False
    # when citizens may be called, local time, "HH:MM-HH:MM" (no calls at night)
    hours: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")] = (
        "08:00-20:00"
    )
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    # fractions of a minute are allowed (tests); a city keeps it to tens of minutes
    retry_minutes: Annotated[float, Field(ge=0.05, le=24 * 60)] = 60
    # how long the citizen's phone rings before the try counts as "no answer"
    ring_seconds: Annotated[int, Field(ge=10, le=120)] = 40
    # "press 1 to hear it again" after the result
    repeat_key: bool = True
    # the worker also looks for due calls this often (woken at once by a new result)
    sweep_seconds: Annotated[float, Field(ge=1, le=3600)] = 60
    prompts: ResultCallPrompts = ResultCallPrompts()

    @field_validator("hours")
    @classmethod
    def _window(cls, v: str) -> str:
        start, end = v.split("-")
        if start == end:
            raise ValueError("must be a window such as 08:00-20:00 (start and end differ)")
        return v

    def window(self) -> tuple[time, time]:
        """The allowed hours as (start, end), local time; end before start crosses midnight."""
        start, end = self.hours.split("-")
        return time.fromisoformat(start), time.fromisoformat(end)


class Queues(_Model):
    max_wait_seconds: Annotated[int, Field(ge=30, le=7200)] = 600
    ring_seconds: Annotated[int, Field(ge=5, le=120)] = 15
    wrapup_seconds: Annotated[int, Field(ge=0, le=600)] = 5
    strategy: Literal["rrmemory", "leastrecent", "fewestcalls", "random", "ringall"] = "rrmemory"
    overflow: Overflow = Overflow()
    # The number a citizen sees when an agent calls them from a ticket ("call the
    # citizen"); empty: the hotline the ticket's call came in on, else the first hotline.
    outbound_caller_id: Annotated[str, Field(pattern=r"^(\d{3,15})?$")] = ""


# host or host:port, an IPv6 address in brackets
_HOST_PORT = r"^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$"


class Trunk(_Model):
    """The carrier's SIP trunk.

    Its calls are recognised by source address (``match``), by our own
    registration to it (``register``: the carrier calls the contact we
    registered, which carries a ``line`` parameter naming this trunk), or
    both.  ``username`` is our account at the carrier: it registers, and it
    answers the carrier's challenges to the calls we send (the emergency
    numbers, callbacks).  ``inbound_username`` makes the carrier's own calls
    authenticate to us.  Both passwords live in the secrets file, never here.
    """

    name: Annotated[str, Field(pattern=_ID)] = "carrier"
    match: list[str] = ["127.0.0.2"]
    contact: str | None = None
    codecs: list[Literal["alaw", "ulaw", "g722", "gsm"]] = ["alaw", "ulaw"]
    # written ``register`` (a name pydantic's models keep for themselves)
    registers: bool = Field(default=False, alias="register")
    # the registrar, host or host:port (IPv6 in brackets); calls go there too
    # unless ``contact`` says otherwise
    server: Annotated[str, Field(pattern=_HOST_PORT)] | None = None
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")] | None = None
    # the registration's domain (client URI sip:username@domain) when not the server's
    domain: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+$")] | None = None
    expiry_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    retry_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    inbound_username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")] | None = None

    @property
    def out_contact(self) -> str | None:
        """Where calls to the carrier go: ``contact``, else the registrar."""
        if self.contact:
            return self.contact
        return f"sip:{self.server}" if self.registers else None


class SmsNumber(_Model):
    """A number the SMSC delivers SMS to us on, and whose desk they land on."""

    number: Annotated[str, Field(pattern=r"^\+?[0-9]{2,20}$")]
    team: Annotated[str, Field(pattern=_ID)]


class SmsSettings(_Model):
    """SMS through Kannel (bearerbox + smsbox) speaking SMPP to the carrier's SMSC.

    Off by default.  The SMSC's password is the carrier's to give: it lives in
    the secrets file (``[sms] password``) or ``HOTLINE_SMS_PASSWORD``, never
    here; Kannel's own passwords (sendsms, admin) and the secret its calls to
    us carry are generated there.
    """

    enabled: bool = False
    # the carrier's SMSC, spoken to over SMPP 3.4 (one transceiver bind)
    smsc_host: Annotated[str, Field(pattern=r"^[A-Za-z0-9.:-]+$")] = "127.0.0.1"
    smsc_port: Annotated[int, Field(ge=1, le=65535)] = 2775
    system_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]{1,15}$")] = "hotline"
    system_type: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{0,12}$")] = ""
    # the numbers SMS reach us on; empty: the hotlines' numbers, each to its team
    numbers: list[SmsNumber] = []
    # the Party Committee's number: its SMS are passed on to this team's desk
    party_number: Annotated[str, Field(pattern=r"^\+?[0-9]{2,20}$")] | None = None
    party_team: Annotated[str, Field(pattern=_ID)] = "t1022"
    # the number our SMS go out from (default: the first receiving number)
    sender: Annotated[str, Field(pattern=r"^\+?[0-9A-Za-z]{2,20}$")] | None = None
    # an SMS from a number with a ticket still open and created within these days
    # is attached to it; otherwise it waits in the desk's inbox
    attach_days: Annotated[int, Field(ge=0, le=365)] = 30
    # more SMS than this from one number within a minute are flagged as a flood
    # (kept and shown, never attached or answered automatically)
    flood_per_minute: Annotated[int, Field(ge=1, le=10000)] = 10
    # the longest SMS we send, in parts (Kannel refuses longer)
    max_parts: Annotated[int, Field(ge=1, le=10)] = 6
    # send the tracking code to the citizen when a ticket is made from their SMS
    notify_code: bool = True
    # Kannel's own ports, on loopback
    kannel_host: str = "127.0.0.1"
    admin_port: Annotated[int, Field(ge=1, le=65535)] = 13000
    box_port: Annotated[int, Field(ge=1, le=65535)] = 13001
    sendsms_port: Annotated[int, Field(ge=1, le=65535)] = 13013
    # where Kannel reaches the application's panel (default: the panel's address)
    callback_url: Annotated[str, Field(pattern=r"^https?://")] | None = None


_MAIL_HOST = r"^[A-Za-z0-9.:\[\]-]+$"
_MAILBOX = r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,190}$"


class EmailSettings(_Model):
    """Email: the hotline's mailbox read over IMAP, replies sent over SMTP.

    Off by default.  Both passwords are the mail server's to give: they live in
    the secrets file (``[email] imap_password`` / ``smtp_password``) or
    ``HOTLINE_EMAIL_IMAP_PASSWORD`` / ``HOTLINE_EMAIL_SMTP_PASSWORD``, never here.
    ``tls``: ``tls`` (implicit TLS, ports 993 / 465), ``starttls`` (upgrade a
    plain connection, 143 / 587) or ``none`` (loopback test servers only).
    """

    enabled: bool = False
    # the hotline's address: replies and notifications go out from it
    address: Annotated[str, Field(pattern=_MAILBOX)] = "hotline@localhost"
    display_name: Annotated[str, Field(max_length=100)] = "Tổng đài 1022"
    # the team whose desk mail waits on (default: the first team)
    team: Annotated[str, Field(pattern=_ID)] | None = None
    imap_host: Annotated[str, Field(pattern=_MAIL_HOST)] = "127.0.0.1"
    imap_port: Annotated[int, Field(ge=1, le=65535)] = 993
    # tls: implicit TLS (993); starttls: plain, upgraded before the login, required
    # (143); none: plain (loopback test servers only)
    imap_tls: Literal["tls", "starttls", "none"] = "tls"
    imap_user: Annotated[str, Field(min_length=1, max_length=200)] = "hotline"
    imap_folder: Annotated[str, Field(min_length=1, max_length=200)] = "INBOX"
    # where a stored message is moved; none: it stays and is flagged \Seen
    done_folder: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    # IDLE where the server offers it (a new mail is read within a second);
    # otherwise, and as a safety net beside IDLE, the folder is read this often
    poll_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    smtp_host: Annotated[str, Field(pattern=_MAIL_HOST)] = "127.0.0.1"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_tls: Literal["tls", "starttls", "none"] = "starttls"
    # none: no authentication (a relay that trusts our address)
    smtp_user: Annotated[str, Field(min_length=1, max_length=200)] | None = "hotline"
    # a mail larger than this is kept by its headers only, flagged too_large
    max_message_mb: Annotated[float, Field(gt=0, le=200)] = 25
    # one attachment larger than this, or of a type not listed, is not kept
    max_attachment_mb: Annotated[float, Field(gt=0, le=100)] = 10
    attachment_types: list[Annotated[str, Field(pattern=r"^[a-z0-9.+-]+/[a-z0-9.+*-]+$")]] = [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "application/pdf",
        "text/plain",
        "audio/*",
        "video/mp4",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ]
    # the certificate authorities to trust for both servers (a city's own CA, PEM);
    # none: the system's
    ca_file: Path | None = None
    # a ticket made from a mail sends its tracking code back, in the same thread
    notify_code: bool = True
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30


def _mail_port_problems(cfg: EmailSettings) -> list[str]:
    """STARTTLS asked on IMAP's implicit-TLS port (993): both ends would wait for the
    other to speak first, and the mistake would show only as a timeout.  (The older
    values, ``tls`` and ``none``, are taken on any port as before.)"""
    if cfg.imap_tls == "starttls" and cfg.imap_port == 993:
        return [
            "email.imap_tls: starttls upgrades a plain connection, but imap_port 993 "
            'speaks TLS from the first byte (use imap_tls = "tls", or the server\'s '
            "STARTTLS port, usually 143)"
        ]
    return []


_HHMM = r"([01]\d|2[0-3]):[0-5]\d"


class NotifySettings(_Model):
    """What the hotline tells citizens and agencies by itself (notify/).

    To the citizen, on the channel they used (SMS for a phone or SMS report,
    email for an email or web report that left an address): the tracking
    number at creation, "forwarded" for levels 2 and 3, the result, and the
    SMS survey ("reply 1-5"; 1-2 offers "reply 9 to reopen").  To agencies by
    email: a forwarded ticket, a reminder before its deadline, the overdue
    alert and the escalation to the parent agency; a daily digest of overdue
    and reopened tickets to the supervisors.  Each one is a row of the
    ``notifications`` table and a line of the ticket's history.  Mail goes out
    through the email channel's SMTP sender (``[email]``, its server and address);
    with ``[email]`` off, email notifications are written and given up as not sent.
    """

    enabled: bool = False
    # each notification to the citizen, on or off
    code: bool = True
    forwarded: bool = True
    result: bool = True
    survey: bool = True
    # a phone report's citizen is texted on the number they called from
    phone_by_sms: bool = True
    # the language of what citizens are sent
    language: Literal["vi", "en"] = "vi"
    # local hours in which non-urgent SMS go out (forwarded, result, survey);
    # outside them they wait for the start.  The tracking number and the answers
    # to a citizen's own SMS go at once.
    hours: Annotated[str, Field(pattern=rf"^{_HHMM}-{_HHMM}$")] = "07:00-21:00"
    # a reply of 1-5 within these days of the survey is its rating
    survey_days: Annotated[int, Field(ge=1, le=60)] = 3
    # to agencies, by email
    agency_forwarded: bool = True
    # hours before the deadline the agency is reminded (0: no reminder)
    agency_reminder_hours: Annotated[int, Field(ge=0, le=720)] = 24
    agency_overdue: bool = True
    agency_escalation: bool = True
    # the daily digest of overdue and reopened tickets, and when (local time)
    digest_to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    digest_at: Annotated[str, Field(pattern=rf"^{_HHMM}$")] = "07:30"
    # the sender looks for due notifications this often (woken at once by a new one)
    sweep_seconds: Annotated[float, Field(ge=0.2, le=3600)] = 30
    # how many go out at once, and how often one is tried
    # (SQLite takes one writer at a time: more than ~10 only wait for its lock)
    concurrency: Annotated[int, Field(ge=1, le=500)] = 10
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    retry_minutes: Annotated[float, Field(ge=0.01, le=24 * 60)] = 10

    @field_validator("hours")
    @classmethod
    def _window(cls, v: str) -> str:
        start, end = v.split("-")
        if start == end:
            raise ValueError("must be a window such as 07:00-21:00 (start and end differ)")
        return v

    def window(self) -> tuple[time, time]:
        """The hours as (start, end), local time; end before start crosses midnight."""
        start, end = self.hours.split("-")
        return time.fromisoformat(start), time.fromisoformat(end)


class AsteriskSettings(_Model):
    binary: str | None = None
    cache_dir: Path = Path("/var/cache/hotline/asterisk-sid")
    bind_address: str = "127.0.0.1"
    sip_port: Annotated[int, Field(ge=1, le=65535)] = 5060
    rtp_start: Annotated[int, Field(ge=1024, le=65535)] = 10000
    rtp_end: Annotated[int, Field(ge=1024, le=65535)] = 20000
    external_address: str | None = None
    # Addresses reached without NAT when ``external_address`` is set: Asterisk
    # gives these the private address in SIP and SDP, everyone else the public
    # one. Never the bind address (0.0.0.0/32 would match no phone on the LAN,
    # which then gets the public address: one-way audio).
    local_net: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [
            ipaddress.ip_network(n)
            for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
        ],
        min_length=1,
    )
    ami_host: str = "127.0.0.1"
    ami_port: Annotated[int, Field(ge=1, le=65535)] = 5038
    ami_user: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = "hotline"
    # Phones over TLS (SIP on tls_port, TCP) with the certificate and key
    # below (PEM; copied beside Asterisk's configuration, so the chroot sees
    # them).  The trunk keeps UDP.
    tls: bool = False
    tls_port: Annotated[int, Field(ge=1, le=65535)] = 5061
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The phones' media: "no" (RTP), "optional" (SRTP offered, RTP accepted),
    # "required" (SRTP or no call).  SDES keys travel in SIP: TLS only.
    srtp: Literal["no", "optional", "required"] = "no"

    @model_validator(mode="after")
    def _rtp(self) -> AsteriskSettings:
        if self.rtp_end <= self.rtp_start:
            raise ValueError("rtp_end must be above rtp_start")
        return self


class AgiSettings(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 4573


class PanelSettings(_Model):
    """The agents', supervisors' and agencies' web panel."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # Sessions, screen-pops and live agent states are shared through Redis so
    # that several panel processes can serve the agents.
    redis_url: Annotated[str, Field(pattern=r"^rediss?://")] = "redis://127.0.0.1:6379/0"
    redis_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_:.-]{0,40}$")] = "hotline"
    language: Literal["vi", "en"] = "vi"
    session_hours: Annotated[float, Field(gt=0, le=24 * 7)] = 12
    # Sign-in lockout: this many failures in a row lock the account for a while.
    lockout_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    lockout_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    # Failures from one client address within lockout_minutes before that
    # address is refused: below lockout_attempts (unset: one below), so that
    # one address alone can never lock out an account it does not own
    # (accounts/throttle.py).
    signin_address_attempts: Annotated[int, Field(ge=1, le=100)] | None = None
    # Addresses not limited so (an office behind one NAT address).
    signin_exempt_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    # Reverse proxies whose X-Forwarded-For names the client (else the peer is).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # Set when the panel is served over HTTPS (cookies then carry "Secure").
    secure_cookies: bool = False
    # Roles that may turn on a second factor (TOTP codes from an authenticator
    # app) on their account page; with totp_required they must, before
    # anything else once signed in.
    totp_roles: list[Literal["agent", "supervisor", "admin", "agency", "oversight"]] = [
        "admin",
        "supervisor",
        "oversight",
    ]
    totp_required: bool = False

    @property
    def address_attempts(self) -> int:
        if self.signin_address_attempts is not None:
            return self.signin_address_attempts
        return max(1, self.lockout_attempts - 1)

    @model_validator(mode="after")
    def _address_below_lockout(self) -> PanelSettings:
        if self.lockout_attempts > 1 and self.address_attempts >= self.lockout_attempts:
            raise ValueError(
                "signin_address_attempts must be below lockout_attempts: one address "
                "must not be able to lock an account by itself"
            )
        return self


class PublicSettings(_Model):
    """The public side (no sign-in): the status page and the portal of completed reports.

    Served on its own address (``host``, ``port``), so that it can face the
    internet while the staff panel stays internal; or, with ``path_prefix``
    (e.g. "/public"), under the panel's own address.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8090
    # "" : its own port; "/public": under the panel (the port is then unused)
    path_prefix: Annotated[str, Field(pattern=r"^(/[a-z0-9][a-z0-9-]{0,39})?$")] = ""
    # The public site's language before the visitor chooses (Vietnamese first).
    language: Literal["vi", "en"] = "vi"
    # The address citizens reach the public site at (e.g. https://1022.example.vn), as
    # the SMS and emails that tell a result give it; unset: they give no address.
    url: Annotated[str | None, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = None
    # Status look-ups that match no report, per client address, within
    # lookup_minutes, before that address must wait (guessing numbers).
    lookup_attempts: Annotated[int, Field(ge=1, le=1000)] = 10
    lookup_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    # Completed reports per page of the portal.
    page_size: Annotated[int, Field(ge=1, le=100)] = 20
    # How long a rendered page of the portal (and its district list) is answered
    # again to everyone who asks for the same address in the same language; a
    # report withheld or reopened leaves the portal within this time (at once
    # when the change is made in the same process). 0: render every request.
    cache_seconds: Annotated[float, Field(ge=0, le=300)] = 5

    @field_validator("path_prefix")
    @classmethod
    def _prefix_free(cls, v: str) -> str:
        # the panel's own paths: a prefix there would hide them
        taken = ("/api", "/static", "/login", "/logout", "/tickets", "/admin", "/agent")
        if v in taken:
            raise ValueError(f"{v} is a path of the panel; choose another, e.g. /public")
        return v


class Topic(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    name: LocalText


def _default_topics() -> list[Topic]:
    names = [
        ("urban", "Quản lý đô thị", "Urban management"),
        ("traffic", "Giao thông", "Traffic"),
        ("flooding", "Ngập nước", "Flooding"),
        ("electricity", "Điện", "Electricity"),
        ("water", "Cấp thoát nước", "Water and drainage"),
        ("trees", "Cây xanh", "Trees"),
        ("buses", "Xe buýt", "Buses"),
        ("pollution", "Ô nhiễm môi trường", "Pollution"),
        ("security", "An ninh trật tự", "Security and public order"),
        ("complaints", "Khiếu nại, tố cáo", "Complaints and denunciations"),
        ("procedures", "Thủ tục hành chính", "Administrative procedures"),
        ("corruption", "Tham nhũng, tiêu cực", "Corruption"),
        ("other", "Khác", "Other"),
    ]
    return [Topic(id=i, name=LocalText(vi=vi, en=en)) for i, vi, en in names]


class ConfidentialSettings(_Model):
    """Which reports are restricted, and who is cleared to see them (tickets.confidential).

    A report of one of ``domains`` or ``topics`` is restricted: never published, and
    seen only by the accounts named in ``readers``, the agent who took it, the officers
    of the agencies in ``agencies`` (those forwarded to them) and the oversight role.
    """

    domains: list[Literal["party", "state"]] = ["party"]
    # denunciations and corruption
    topics: list[str] = ["complaints", "corruption"]
    # user names of the staff cleared for every restricted report (supervisors of the
    # Party Committee's desk; an admin only when named here too)
    readers: list[Annotated[str, Field(min_length=1, max_length=64)]] = []
    # codes of the agencies whose officers are cleared (the Party Committee Office)
    agencies: list[Annotated[str, Field(min_length=1, max_length=40)]] = []
    # what the oversight role (the Inspection Committee) reads: every report, or
    # only the restricted ones
    oversight_scope: Literal["all", "restricted"] = "all"

    @field_validator("readers")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [name.strip().lower() for name in v]  # user names are stored lower-case


class TicketSettings(_Model):
    """Classification and deadlines of citizens' reports."""

    topics: Annotated[list[Topic], Field(min_length=1)] = Field(default_factory=_default_topics)
    # Hours an agency has to answer a forwarded report, by handling level
    # (levels 2 and 3 are forwarded; 4 and 5 are deadlines for the meeting
    # and for the thank-you letter).
    deadline_hours: dict[Literal["2", "3", "4", "5"], Annotated[int, Field(ge=1, le=24 * 365)]] = {
        "2": 72,
        "3": 120,
        "4": 240,
        "5": 360,
    }
    # How often overdue reports are looked for (and escalated).
    overdue_check_seconds: Annotated[float, Field(ge=1, le=3600)] = 60
    # Repeat reports (tickets.repeats): earlier reports created within this many days
    # are suggested when a report is written; a group of this many reports (the first
    # and its repeats) not yet answered is flagged for level 3, with an alert.
    repeat_window_days: Annotated[int, Field(ge=1, le=3660)] = 180
    repeat_flag_after: Annotated[int, Field(ge=2, le=1000)] = 3
    # Hours before a deadline the agency's officers are reminded of it (once per
    # deadline, tickets.review.reminders); 0: no reminders.
    remind_before_hours: Annotated[int, Field(ge=0, le=24 * 30)] = 24
    # Files staff and agencies' officers attach to a ticket (tickets.attachments):
    # checked by their content, never by their name.
    attachment_max_bytes: Annotated[int, Field(ge=10_000, le=100_000_000)] = 10_000_000
    attachment_max_pixels: Annotated[int, Field(ge=10_000, le=200_000_000)] = 40_000_000
    attachment_types: Annotated[
        list[Literal["image/jpeg", "image/png", "image/webp", "application/pdf"]],
        Field(min_length=1),
    ] = ["image/jpeg", "image/png", "image/webp", "application/pdf"]
    attachments_per_ticket: Annotated[int, Field(ge=1, le=500)] = 30
    # Restricted reports (never published, seen only by those cleared): the
    # Party-building domain, denunciations and corruption by default.
    confidential: ConfidentialSettings = ConfidentialSettings()

    @model_validator(mode="before")
    @classmethod
    def _old_name(cls, data: Any) -> Any:
        """``never_public_topics`` (before restricted reports were also hidden from the
        staff not cleared) is read as ``confidential.topics``."""
        if isinstance(data, dict) and "never_public_topics" in data:
            data = dict(data)
            topics = data.pop("never_public_topics")
            confidential = dict(data.get("confidential") or {})
            if "topics" in confidential:
                raise ValueError("never_public_topics: give the topics in confidential.topics only")
            data["confidential"] = {**confidential, "topics": topics}
        return data

    @property
    def never_public_topics(self) -> list[str]:
        """The restricted topics (the old name, still read by the public side)."""
        return self.confidential.topics

    @model_validator(mode="after")
    def _topics(self) -> TicketSettings:
        ids = [t.id for t in self.topics]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"topics: {', '.join(dup)} used more than once")
        unknown = sorted(set(self.confidential.topics) - set(ids))
        if unknown:
            raise ValueError(f"confidential.topics: no topic {', '.join(unknown)}")
        return self

    def deadline(self, level: int) -> int | None:
        """Hours allowed for ``level``; None for level 1 (answered on the call)."""
        return self.deadline_hours.get(str(level)) if level > 1 else None  # type: ignore[call-overload]


class WrapupCode(_Model):
    """One wrap-up code an agent may give an answered call."""

    id: Annotated[str, Field(pattern=_ID)]
    label: LocalText
    # whether a call with this code had usable content (the reports' share)
    content: bool


def _default_wrapup_codes() -> list[WrapupCode]:
    codes = [
        ("ticket", "Đã tạo phiếu", "Ticket created", True),
        ("informed", "Đã hướng dẫn, trả lời ngay", "Information given on the spot", True),
        ("follow_up", "Hỏi tình trạng phản ánh", "Asked about a report", True),
        ("transferred", "Đã chuyển cuộc gọi", "Transferred", True),
        ("no_content", "Không có nội dung", "No content", False),
        ("silent", "Im lặng", "Silent call", False),
        ("prank", "Gọi quấy rối, đùa giỡn", "Prank", False),
        ("abusive", "Lăng mạ, xúc phạm", "Abusive", False),
        ("wrong_number", "Nhầm số", "Wrong number", False),
    ]
    return [WrapupCode(id=i, label=LocalText(vi=vi, en=en), content=c) for i, vi, en, c in codes]


class WrapupSettings(_Model):
    """The codes an agent gives each answered call after it (callcenter.wrapup)."""

    codes: Annotated[list[WrapupCode], Field(min_length=1, max_length=50)] = Field(
        default_factory=_default_wrapup_codes
    )
    # How long after the call ended its agent may still set or change the code;
    # later, only a supervisor may (the figures of a closed shift stay put).
    change_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30

    @model_validator(mode="after")
    def _codes(self) -> WrapupSettings:
        ids = [c.id for c in self.codes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"codes: {', '.join(dup)} used more than once")
        return self

    def code(self, code_id: str) -> WrapupCode | None:
        return next((c for c in self.codes if c.id == code_id), None)


class Open311Settings(_Model):
    """The Open311 GeoReport v2 API (open311/): what it tells and how much it takes."""

    # The base address clients reach the public site at (e.g. https://1022.example.vn);
    # service discovery lists <public_url>/open311/v2.  None: taken from the request.
    public_url: Annotated[str | None, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = None
    # jurisdiction_id clients may send; None: any is accepted (one city per server).
    jurisdiction_id: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,99}$")] = None
    # Who to ask about the API (service discovery's "contact").
    contact: Annotated[str, Field(min_length=1, max_length=300)] = (
        "Tổng đài 1022 — Văn phòng UBND Thành phố"
    )
    # What a client is told after a report is taken (the spec's service_notice).
    service_notice: LocalText = LocalText(
        vi="Đã tiếp nhận phản ánh. Tổng đài 1022 sẽ phân loại và chuyển cơ quan có thẩm quyền.",
        en="Report received. The 1022 hotline will classify it and forward it to the "
        "agency responsible.",
    )
    # agency_responsible of a published report that names no agency.
    default_agency: Annotated[str, Field(min_length=1, max_length=200)] = "Tổng đài 1022"
    # GET requests without dates covers this many days back; at most max_results
    # requests are answered (newest first).
    default_days: Annotated[int, Field(ge=1, le=3660)] = 90
    max_results: Annotated[int, Field(ge=1, le=1000)] = 1000
    # The longest description taken (characters).
    description_max: Annotated[int, Field(ge=100, le=5000)] = 4000
    # Requests per minute from one client address (every endpoint).
    requests_per_minute: Annotated[int, Field(ge=1, le=100000)] = 120
    # Reports (POST) per hour with one API key, and from one client address.
    posts_per_hour_per_key: Annotated[int, Field(ge=1, le=100000)] = 200
    posts_per_hour_per_address: Annotated[int, Field(ge=1, le=100000)] = 30
    # Reverse proxies whose X-Forwarded-For names the client (else the peer is).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)


class WebReportSettings(_Model):
    """The public report form: citizens report a problem on the web (public/report.py)."""

    # a description shorter than this says too little to act on
    description_min: Annotated[int, Field(ge=1, le=500)] = 10
    description_max: Annotated[int, Field(ge=50, le=5000)] = 2000
    # an optional photo: JPEG, PNG or WebP, checked by decoding it
    photo_max_bytes: Annotated[int, Field(ge=10_000, le=50_000_000)] = 5_000_000
    photo_max_pixels: Annotated[int, Field(ge=10_000, le=200_000_000)] = 40_000_000
    # a form sent back sooner than this after it was shown was not filled by a person
    min_fill_seconds: Annotated[float, Field(ge=0, le=600)] = 3
    # reports one client address may send (tries, refused ones too) within
    # rate_window_minutes
    rate_limit: Annotated[int, Field(ge=1, le=10_000)] = 10
    rate_window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 60
    # the ALTCHA proof-of-work check (no outside service); cost is PBKDF2's iterations
    altcha: bool = False
    altcha_cost: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    altcha_expire_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 20
    # the map to pick the place on: a tile server's URL with {z}, {x} and {y}
    # (e.g. a city's own OpenStreetMap tile server); unset: no map on the form
    tile_url: Annotated[str | None, Field(pattern=r"^(https?://|/).*\{z\}.*\{x\}.*\{y\}")] = None
    tile_attribution: str = "© OpenStreetMap contributors"
    map_center: tuple[
        Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]
    ] = (10.7769, 106.7009)
    map_zoom: Annotated[int, Field(ge=1, le=19)] = 13
    # where the citizen checks the status of the report (the public status page)
    status_url: str = "/status"

    @model_validator(mode="after")
    def _lengths(self) -> WebReportSettings:
        if self.description_min >= self.description_max:
            raise ValueError("description_min must be below description_max")
        return self


class RecordingSettings(_Model):
    """After the call: transcription, replay, access and retention of recordings."""

    # A Vosk model directory (vosk-model-small-vn-0.4 or vosk-model-vn-0.4 for
    # Vietnamese); relative paths are under home.  None: calls are recorded but
    # not transcribed, and ``hotline`` says so at start.
    vosk_model: Path | None = None
    # where `hotline model fetch` (and set-up) look models up: None for the list
    # vosk's own downloader reads; a mirror of it (same JSON) where that is not reachable
    model_list_url: Annotated[str | None, Field(pattern=r"^https?://")] = None
    # transcription worker processes ``hotline start`` runs (0: run them elsewhere)
    workers: Annotated[int, Field(ge=0, le=32)] = 1
    # a job whose worker has not reported for this long is handed to another
    job_lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 60
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    # audio shorter than this (seconds) is not worth transcribing
    min_seconds: Annotated[float, Field(ge=0.1, le=60)] = 1.0
    # agents may replay their own calls (admins and supervisors always may)
    agents_replay_own: bool = False
    # audio older than this many days is purged; None keeps it for ever
    keep_audio_days: Annotated[int | None, Field(ge=1, le=36500)] = 365
    # a purge keeps the transcripts (the call record and the audit log are always kept)
    keep_transcripts: bool = True


class SupervisorPhone(_Model):
    """A supervisor's desk phone: registers like an agent's, joins no queue."""

    extension: Annotated[str, Field(pattern=r"^\d{2,8}$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]


class SupervisionSettings(_Model):
    """Supervisors in an agent's call: listen, whisper or barge (ChanSpy)."""

    # the desk phones a supervisor's or admin's account may name as its extension
    phones: list[SupervisorPhone] = []
    # the agent's screen shows "a supervisor is on the line" while one is
    show_to_agent: bool = False
    # how long the supervisor's phone rings before the attempt is given up
    ring_seconds: Annotated[int, Field(ge=5, le=120)] = 20


class BlocklistSettings(_Model):
    """Numbers a supervisor has put on the blocked list (callcenter.blocklist).

    A blocked caller hears ``message`` and is offered only the hotline's
    emergency option; every block has an end, at most ``max_days`` away.
    """

    # the end a supervisor is offered, and the furthest one accepted
    default_days: Annotated[int, Field(ge=1, le=365)] = 7
    max_days: Annotated[int, Field(ge=1, le=365)] = 30
    # what a blocked caller hears first; the hotline's emergency option's own
    # prompt follows it ("for an emergency, press 0")
    message: LocalText = LocalText(
        vi="Số điện thoại của quý vị đang tạm thời bị hạn chế gọi tới tổng đài "
        "do nhiều cuộc gọi quấy rối.",
        en="Calls from your number to this hotline are restricted for a while, "
        "after repeated nuisance calls.",
    )
    # suggested on the blocked-numbers page: numbers whose answered calls got
    # one of ``candidate_codes`` at least ``candidate_calls`` times in
    # ``candidate_days`` days (a suggestion only: nothing is blocked by itself)
    candidate_codes: list[Annotated[str, Field(pattern=_ID)]] = ["prank", "abusive"]
    candidate_calls: Annotated[int, Field(ge=1, le=1000)] = 3
    candidate_days: Annotated[int, Field(ge=1, le=365)] = 7
    # the IVR's copy of the list is read again at least this often (and at once
    # when the panel changes it): a missed notice is caught up by then
    refresh_seconds: Annotated[int, Field(ge=1, le=3600)] = 30

    @model_validator(mode="after")
    def _days(self) -> BlocklistSettings:
        if self.default_days > self.max_days:
            raise ValueError(
                f"default_days: {self.default_days} is more than max_days ({self.max_days})"
            )
        return self


class QaSettings(_Model):
    """Quality grading of recorded calls (:mod:`qa`): the weekly draw and who grades."""

    # answered calls drawn at random per agent per week (spread over the shifts they worked)
    calls_per_agent: Annotated[int, Field(ge=0, le=100)] = 3
    # calls shorter than this (talk time) are not drawn: nothing to grade
    min_talk_seconds: Annotated[int, Field(ge=0, le=3600)] = 20
    # a citizen's rating at most this (1 to 5) puts the call in the week's list
    low_rating: Annotated[int, Field(ge=1, le=5)] = 2
    # the roles that grade (the accounts have roles, no finer permissions)
    graders: Annotated[list[Literal["supervisor", "admin"]], Field(min_length=1)] = [
        "supervisor",
        "admin",
    ]
    # how long after a grade its agent may dispute it
    dispute_days: Annotated[int, Field(ge=1, le=365)] = 14


class TransferSettings(_Model):
    """Handing a live call on: to another team's queue, a supervisor's phone, an
    agency's number (the agencies directory) or an emergency number, through the
    trunk for the last two.  Only these targets: nobody types a number."""

    enabled: bool = True
    # the emergency services a call may be handed to over the trunk
    emergency_numbers: list[Annotated[str, Field(pattern=r"^\d{3,6}$")]] = ["113", "114", "115"]
    # how long a phone or number rings before the caller hears "busy"
    ring_seconds: Annotated[int, Field(ge=5, le=120)] = 30


class Congestion(_Model):
    """When a queue is congested: the alarm goes up past any threshold and
    clears once every measure is back under ``clear_ratio`` of its threshold."""

    callers_waiting: Annotated[int, Field(ge=1, le=1000)] = 8
    longest_wait_seconds: Annotated[int, Field(ge=5, le=7200)] = 90
    # all agents busy (none free) while the number waiting grew over this window
    all_busy_growing_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    clear_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5


class StatsSettings(_Model):
    """Queue statistics and reports."""

    # answered within this many seconds counts towards the service level
    service_level_seconds: Annotated[int, Field(ge=1, le=3600)] = 20
    # callers who hang up sooner than this after entering the queue are "short
    # abandons", left out of the service level and the abandon rate (0: none);
    # the figures are defined in queue_stats/kpis.py
    short_abandon_seconds: Annotated[int, Field(ge=0, le=120)] = 5
    congestion: Congestion = Congestion()
    # who may read /metrics (Prometheus): client addresses or networks
    metrics_allow: Annotated[list[IPvAnyNetwork], Field(validate_default=True)] = [
        "127.0.0.1/32",  # type: ignore[list-item]
        "::1/128",  # type: ignore[list-item]
    ]
    # a file holding a token that /metrics then also requires (Authorization: Bearer)
    metrics_token_file: Path | None = None


class PeriodicReports(_Model):
    """The leaders' reports written on a schedule (:mod:`queue_stats.periodic`): each
    period named in ``periods`` is written as XLSX and PDF once it is over (at ``at``,
    local time, the day after), kept under ``<state_dir>/reports/`` and listed in the
    panel, and handed to the mail sender for ``recipients`` when email is configured."""

    enabled: bool = False
    periods: list[Literal["daily", "weekly", "monthly"]] = ["weekly", "monthly"]
    # local time after which the period just ended is written
    at: time = time(6, 30)
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []
    # the language of the documents (the panel's downloads use the reader's)
    language: Literal["vi", "en"] = "vi"
    # TrueType fonts the PDF embeds: they must have Vietnamese letters (Debian's
    # fonts-dejavu-core, installed by setup.sh, has them)
    font: Path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    font_bold: Path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    # stored documents older than this are deleted (0: kept for ever)
    keep_days: Annotated[int, Field(ge=0, le=3650)] = 730
    # how often the schedule is looked at
    check_seconds: Annotated[int, Field(ge=10, le=3600)] = 300

    @field_validator("periods")
    @classmethod
    def _once(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each period at most once")
        return v


class Service(_Model):
    """The system users the hotline runs as when a command that starts it runs
    as root (``setup.sh`` creates them; see :mod:`hotline.privilege`).

    ``user`` runs the application, its panel processes and transcription
    workers; ``pbx_user`` runs Asterisk, which drops to it after binding.
    ``pbx_user``'s group is shared: ``user`` is a member, and reads the
    recordings and queue_log Asterisk writes.  ``""`` keeps root.
    """

    user: str = "hotline"
    pbx_user: str = "hotline-pbx"

    @field_validator("user", "pbx_user")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", v):
            raise ValueError(f"{v!r} is not a system user name (e.g. hotline)")
        if v == "root":
            raise ValueError('"root" is what "" means: leave it empty to keep root')
        return v

    @model_validator(mode="after")
    def _apart(self) -> Service:
        if self.user and self.user == self.pbx_user:
            raise ValueError("user and pbx_user must differ: each owns only what it writes")
        return self


class Paths(_Model):
    state_dir: Path = Path("var")
    recordings_dir: Path = Path("var/recordings")
    prompts_dir: Path = Path("var/prompts")
    custom_prompts_dir: Path = Path("config/prompts")
    overrides_dir: Path = Path("config/asterisk")


class Settings(_Model):
    """The whole configuration, paths made absolute, secrets resolved."""

    home: Path
    # the file these settings were read from (set by load_settings, never in the file):
    # processes the application starts read the same one
    config_path: Path | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    database_url: str = "sqlite:///var/hotline.db"
    paths: Paths = Paths()
    service: Service = Service()
    asterisk: AsteriskSettings = AsteriskSettings()
    agi: AgiSettings = AgiSettings()
    trunk: Trunk = Trunk()
    queues: Queues = Queues()
    panel: PanelSettings = PanelSettings()
    public: PublicSettings = PublicSettings()
    tickets: TicketSettings = TicketSettings()
    wrapup: WrapupSettings = WrapupSettings()
    open311: Open311Settings = Open311Settings()
    web_report: WebReportSettings = WebReportSettings()
    recordings: RecordingSettings = RecordingSettings()
    stats: StatsSettings = StatsSettings()
    result_calls: ResultCalls = ResultCalls()
    supervision: SupervisionSettings = SupervisionSettings()
    blocklist: BlocklistSettings = BlocklistSettings()
    qa: QaSettings = QaSettings()
    sms: SmsSettings = SmsSettings()
    email: EmailSettings = EmailSettings()
    notify: NotifySettings = NotifySettings()
    transfers: TransferSettings = TransferSettings()
    periodic_reports: PeriodicReports = PeriodicReports()
    ivr: Ivr
    shifts: Annotated[list[Shift], Field(min_length=1)]
    teams: Annotated[list[Team], Field(min_length=1)]
    hotlines: Annotated[list[Hotline], Field(min_length=1)]
    agents: Annotated[list[Agent], Field(min_length=1)]
    ami_secret: SecretStr = SecretStr("")
    # signs the web report form's timestamps and its ALTCHA challenges
    form_secret: SecretStr = SecretStr("")
    sip_passwords: dict[str, SecretStr] = {}
    # the trunk's passwords: ours at the carrier, and the one its calls give us
    trunk_password: SecretStr = SecretStr("")
    trunk_inbound_password: SecretStr = SecretStr("")
    # SMS: the SMSC's password for sms.system_id; Kannel's sendsms/admin password;
    # the secret Kannel's calls to the application carry
    sms_password: SecretStr = SecretStr("")
    kannel_password: SecretStr = SecretStr("")
    sms_callback_secret: SecretStr = SecretStr("")
    # email: the mailbox's IMAP password and the SMTP server's
    email_imap_password: SecretStr = SecretStr("")
    email_smtp_password: SecretStr = SecretStr("")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Ho_Chi_Minh)") from None
        return v

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return v

    @model_validator(mode="after")
    def _cross_refs(self) -> Settings:
        problems: list[str] = []

        def dupes(kind: str, values: list[str]) -> None:
            for v in sorted({v for v in values if values.count(v) > 1}):
                problems.append(f"{kind}: {v!r} is used more than once")

        dupes("shifts.id", [s.id for s in self.shifts])
        dupes("teams.id", [t.id for t in self.teams])
        dupes("hotlines.id", [h.id for h in self.hotlines])
        dupes("hotlines.number", [n for h in self.hotlines for n in (h.number, *h.aliases)])
        dupes("agents.id", [a.id for a in self.agents])
        dupes("agents.extension", [a.extension for a in self.agents])
        dupes("supervision.phones.extension", [p.extension for p in self.supervision.phones])
        agent_phones = {a.extension for a in self.agents}
        for i, ph in enumerate(self.supervision.phones):
            if ph.extension in agent_phones:
                problems.append(
                    f"supervision.phones[{i}].extension: {ph.extension} is also an agent's"
                )
        team_ids = {t.id for t in self.teams}
        shift_ids = {s.id for s in self.shifts}
        numbers = {h.number for h in self.hotlines}
        for i, h in enumerate(self.hotlines):
            if h.team not in team_ids:
                problems.append(
                    f"hotlines[{i}].team: no team {h.team!r} (teams: {sorted(team_ids)})"
                )
            for j, o in enumerate(h.menu):
                if o.connect and o.via is None and not self.trunk.out_contact:
                    problems.append(
                        f"hotlines[{i}].menu[{j}].connect: the trunk has no contact to call "
                        "the emergency numbers through (set trunk.contact, or via)"
                    )
        for i, a in enumerate(self.agents):
            if a.team not in team_ids:
                problems.append(f"agents[{i}].team: no team {a.team!r} (teams: {sorted(team_ids)})")
            if a.shift not in shift_ids:
                problems.append(
                    f"agents[{i}].shift: no shift {a.shift!r} (shifts: {sorted(shift_ids)})"
                )
            if a.extension in numbers:
                problems.append(f"agents[{i}].extension: {a.extension} is also a hotline number")
        for t in self.teams:
            for s in self.shifts:
                if not any(a.team == t.id and a.shift == s.id for a in self.agents):
                    problems.append(
                        f"agents: team {t.id!r} has nobody on shift {s.id!r}; "
                        "calls in that shift would wait for no one"
                    )
        problems.extend(_shift_coverage(self.shifts))
        codes = {c.id for c in self.wrapup.codes}
        for code in self.blocklist.candidate_codes:
            if code not in codes:
                problems.append(
                    f"blocklist.candidate_codes: no wrap-up code {code!r} "
                    f"(wrapup.codes: {sorted(codes)})"
                )
        if self.result_calls.enabled and not self.trunk.out_contact:
            problems.append(
                "result_calls.enabled: the trunk has no contact to call citizens through "
                "(set trunk.contact, or register to a server)"
            )
        problems.extend(self._sip_problems())
        problems.extend(self._sms_problems())
        if self.email.team and self.email.team not in team_ids:
            problems.append(f"email.team: no team {self.email.team!r} (teams: {sorted(team_ids)})")
        problems.extend(_mail_port_problems(self.email))
        pub = self.public
        if (
            pub.enabled
            and not pub.path_prefix
            and pub.port == self.panel.port
            and pub.host == self.panel.host
        ):
            problems.append(
                f"public.port: {pub.port} is the panel's port too; give the public site "
                "its own port, or serve it under the panel with public.path_prefix"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _sms_problems(self) -> list[str]:
        team_ids = {t.id for t in self.teams}
        problems = [
            f"sms.numbers[{i}].team: no team {n.team!r} (teams: {sorted(team_ids)})"
            for i, n in enumerate(self.sms.numbers)
            if n.team not in team_ids
        ]
        ext_team = {a.extension: a.team for a in self.agents}
        for t in self.teams:
            for i, ext in enumerate(t.sms_desk):
                if ext_team.get(ext) != t.id:
                    problems.append(
                        f"teams.{t.id}.sms_desk[{i}]: {ext} is not an agent of team {t.id!r}"
                    )
        if self.sms.party_number and self.sms.party_team not in team_ids:
            problems.append(
                f"sms.party_team: no team {self.sms.party_team!r} (teams: {sorted(team_ids)})"
            )
        return problems

    def sms_desks(self) -> dict[str, str]:
        """Each number SMS reach us on, with the team whose desk they land on."""
        desks = {n.number: n.team for n in self.sms.numbers}
        if not desks:
            desks = {h.number: h.team for h in self.hotlines}
        if self.sms.party_number:
            desks[self.sms.party_number] = self.sms.party_team
        return desks

    @property
    def email_team(self) -> str:
        """The team whose desk mail waits on."""
        return self.email.team or self.teams[0].id

    @property
    def sms_sender(self) -> str:
        """The number our SMS go out from."""
        return self.sms.sender or next(iter(self.sms_desks()))

    @property
    def sms_callback_base(self) -> str:
        """Where Kannel calls the application (incoming SMS, delivery reports)."""
        if self.sms.callback_url:
            return self.sms.callback_url.rstrip("/")
        host = self.panel.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.panel.port}"

    def _sip_problems(self) -> list[str]:
        """The trunk's registration and the phones' TLS and SRTP, checked together."""
        problems = []
        t, ast = self.trunk, self.asterisk
        if t.registers and not t.server:
            problems.append("trunk.server: register = true needs the registrar (host or host:port)")
        if t.registers and not t.username:
            problems.append("trunk.username: register = true needs our account name at the carrier")
        if not t.match and not t.registers:
            problems.append(
                "trunk.match: list the carrier's addresses, or set register = true "
                "(its calls are then recognised by our registration)"
            )
        for key in ("tls_cert", "tls_key"):
            path = getattr(ast, key)
            if ast.tls and path is None:
                what = (
                    "private key (PEM)" if key == "tls_key" else "certificate (PEM, the full chain)"
                )
                problems.append(f"asterisk.{key}: tls = true needs the path of the {what}")
            elif ast.tls and path is not None and not self.path(path).is_file():
                problems.append(f"asterisk.{key}: {self.path(path)}: no such file")
        if ast.tls and ast.tls_port == ast.sip_port:
            problems.append("asterisk.tls_port: give TLS its own port (5061 is the usual one)")
        if ast.srtp != "no" and not ast.tls:
            problems.append(
                f"asterisk.srtp: {ast.srtp!r} needs tls = true (the SRTP keys travel in the "
                "SIP messages, which only TLS keeps secret)"
            )
        return problems

    # -- derived values -------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def path(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.home / p).resolve()

    @property
    def state_dir(self) -> Path:
        return self.path(self.paths.state_dir)

    @property
    def recordings_dir(self) -> Path:
        return self.path(self.paths.recordings_dir)

    @property
    def vosk_model(self) -> Path | None:
        m = self.recordings.vosk_model
        return self.path(m) if m is not None else None

    @property
    def prompts_dir(self) -> Path:
        return self.path(self.paths.prompts_dir)

    @property
    def asterisk_dir(self) -> Path:
        """The PBX instance's own tree (etc/, log/, spool/, ...)."""
        return self.state_dir / "asterisk"

    @property
    def queue_log(self) -> Path:
        return self.asterisk_dir / "log" / "queue_log"

    @property
    def database(self) -> str:
        """The database URL with a relative SQLite path made absolute."""
        m = re.match(r"^sqlite(\+\w+)?:///(.*)$", self.database_url)
        if m and m.group(2) and not m.group(2).startswith("/"):
            return f"sqlite:///{self.path(Path(m.group(2)))}"
        return self.database_url

    def team(self, team_id: str) -> Team:
        return next(t for t in self.teams if t.id == team_id)

    def hotline(self, number: str) -> Hotline | None:
        return next((h for h in self.hotlines if number == h.number or number in h.aliases), None)

    @property
    def phone_extensions(self) -> list[str]:
        """Every phone that registers: agents' and supervisors' desk phones."""
        return [a.extension for a in self.agents] + [p.extension for p in self.supervision.phones]

    def sip_password(self, extension: str) -> str:
        return self.sip_passwords[extension].get_secret_value()


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _shift_coverage(shifts: list[Shift]) -> list[str]:
    """Every minute of the day must belong to exactly one shift."""
    owner: list[list[str]] = [[] for _ in range(24 * 60)]
    for s in shifts:
        start, end = _minutes(s.start), _minutes(s.end)
        length = (end - start) % (24 * 60) or 24 * 60
        for k in range(length):
            owner[(start + k) % (24 * 60)].append(s.id)
    problems = []
    gap = next((m for m, o in enumerate(owner) if not o), None)
    if gap is not None:
        problems.append(f"shifts: nobody is on duty at {gap // 60:02d}:{gap % 60:02d}")
    clash = next((m for m, o in enumerate(owner) if len(o) > 1), None)
    if clash is not None:
        names = " and ".join(owner[clash])
        problems.append(f"shifts: {names} overlap at {clash // 60:02d}:{clash % 60:02d}")
    return problems


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("function-after"):
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            str(path), ["file not found (copy config/hotline.example.toml)"]
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), [f"not valid TOML: {e}"]) from None


def set_key(path: Path, table: str, key: str, value: str) -> None:
    """Set ``[table] key = value`` in the operator's file, keeping its comments
    and layout (tomlkit), then check that the whole file still loads."""
    import tomlkit

    before = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(before)
    section = doc.get(table)
    if section is None:
        section = tomlkit.table()
        doc[table] = section
    section[key] = value
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    shutil.copymode(path, tmp)
    tmp.replace(path)
    try:
        load_settings(path)
    except ConfigError:
        path.write_text(before, encoding="utf-8")
        raise


def secrets_path(state_dir: Path) -> Path:
    return state_dir / "secrets.toml"


def ensure_secrets(settings: Settings) -> Path:
    """Generate the secrets the environment does not give, into a 0600 file."""
    path = secrets_path(settings.state_dir)
    current = _read_toml(path) if path.exists() else {}
    changed = False
    if not current.get("ami_secret"):
        current["ami_secret"] = _secrets.token_urlsafe(18)
        changed = True
    if not current.get("form_secret"):
        current["form_secret"] = _secrets.token_urlsafe(32)
        changed = True
    sip = current.setdefault("sip_passwords", {})
    for ext in settings.phone_extensions:
        if not sip.get(ext):
            sip[ext] = _secrets.token_urlsafe(12)
            changed = True
    # the carrier's account password is the carrier's to give (an operator
    # writes it here); the one its calls must give us is ours to make
    trunk = current.setdefault("trunk", {})
    if settings.trunk.inbound_username and not trunk.get("inbound_password"):
        trunk["inbound_password"] = _secrets.token_urlsafe(18)
        changed = True
    # SMS: Kannel's passwords and its callback secret are ours to make; the
    # SMSC's password is the carrier's (an operator writes [sms] password)
    sms = current.setdefault("sms", {})
    if settings.sms.enabled:
        for key, size in (("kannel_password", 18), ("callback_secret", 24)):
            if not sms.get(key):
                sms[key] = _secrets.token_urlsafe(size)
                changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            f'ami_secret = "{current["ami_secret"]}"',
            f'form_secret = "{current["form_secret"]}"',
            "",
            "[sip_passwords]",
        ]
        lines += [f'"{ext}" = "{pw}"' for ext, pw in sorted(sip.items())]
        if trunk:
            lines += ["", "[trunk]"]
            lines += [f"{k} = {json.dumps(str(v))}" for k, v in sorted(trunk.items())]
        if sms:
            lines += ["", "[sms]"]
            lines += [f"{k} = {json.dumps(str(v))}" for k, v in sorted(sms.items())]
        # the mail server's passwords are an operator's: kept as written
        mail = current.get("email", {})
        if mail:
            lines += ["", "[email]"]
            lines += [f"{k} = {json.dumps(str(v))}" for k, v in sorted(mail.items())]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return path


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """The home: ``$HOTLINE_HOME``, else the checkout the code runs from, else
    :data:`SYSTEM_HOME`.  Never the current directory, so every command works
    from anywhere (a service's working directory is ``/``)."""
    env = os.environ if env is None else env
    if env.get("HOTLINE_HOME"):
        return Path(env["HOTLINE_HOME"]).resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "setup.sh").is_file():
        return checkout
    return SYSTEM_HOME


def config_path(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The configuration file: the one named, else ``$HOTLINE_CONFIG``, else
    ``config/hotline.toml`` in the home."""
    env = os.environ if env is None else env
    named = path or env.get("HOTLINE_CONFIG")
    return Path(named).resolve() if named else default_home(env) / DEFAULT_CONFIG


def home_of(path: Path, env: Mapping[str, str]) -> Path:
    """The home for the configuration at ``path``: ``$HOTLINE_HOME`` when set;
    the directory above ``config/`` when the file lies in a home's ``config``
    folder; else the default home (a file in ``/etc/hotline`` keeps its data in
    the home, not in ``/etc`` or ``/var``)."""
    if env.get("HOTLINE_HOME"):
        return Path(env["HOTLINE_HOME"]).resolve()
    if path.parent.name == DEFAULT_CONFIG.parent.name:
        return path.parent.parent
    return default_home(env)


def load_settings(path: Path | str | None = None, *, env: dict[str, str] | None = None) -> Settings:
    """Read, resolve and validate the configuration; raise ConfigError if unusable."""
    env = dict(os.environ if env is None else env)
    path = config_path(path, env)
    raw = _read_toml(path)
    home = home_of(path, env)
    if "HOTLINE_DATABASE_URL" in env:
        raw["database_url"] = env["HOTLINE_DATABASE_URL"]
    raw["home"] = home
    raw["config_path"] = path
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            key = _loc(err["loc"])
            if key == "(top level)":
                problems.extend(msg.split("\n"))
            elif err["type"] == "extra_forbidden":
                problems.append(f"{key}: {_unknown_key(err['loc'])}")
            else:
                problems.append(f"{key}: {msg}")
        lines = _key_lines(path.read_text(encoding="utf-8", errors="replace"))
        raise ConfigError(str(path), problems, [_line_of(p, lines) for p in problems]) from None
    return _with_secrets(settings, env)


# Keys the loader sets itself: never suggested for a mistyped one.
_INTERNAL_KEYS = {
    "home",
    "config_path",
    "ami_secret",
    "form_secret",
    "sip_passwords",
    "trunk_password",
    "trunk_inbound_password",
    "sms_password",
    "kannel_password",
    "sms_callback_secret",
    "email_imap_password",
    "email_smtp_password",
}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings model that holds the keys at ``loc`` (list indexes skipped)."""
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        inner = _model_in(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _unknown_key(loc: tuple[Any, ...]) -> str:
    """'unknown key' with the likeliest meant key, or the keys allowed there."""
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    known = sorted({f.alias or n for n, f in model.model_fields.items()} - _INTERNAL_KEYS)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (the keys here: {', '.join(known)})"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Where each table and key of a TOML file is: its path (as pydantic's
    ``loc``, with list indexes for arrays of tables) -> line number.

    tomllib gives no positions, so this reads the lines: enough to point a
    person at a mistake, not a TOML parser (keys inside inline tables and
    multi-line strings take the line of the key that holds them).
    """
    out: dict[tuple[Any, ...], int] = {}
    count: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    in_string = False
    for n, line in enumerate(text.splitlines(), start=1):
        if line.count('"""') % 2 or line.count("'''") % 2:
            in_string = not in_string
            if not in_string:
                continue
        elif in_string:
            continue
        m = _HEADER.match(line)
        if m:
            parts = [p.strip().strip("\"'") for p in m.group(2).split(".")]
            path: list[Any] = []
            for part in parts[:-1]:
                path.append(part)
                if tuple(path) in count:
                    path.append(count[tuple(path)])
            path.append(parts[-1])
            if m.group(1) == "[[":
                key = tuple(path)
                count[key] = count.get(key, -1) + 1
                path.append(count[key])
            table = tuple(path)
            out.setdefault(table, n)
            continue
        m = _KEY.match(line)
        if m and not line.lstrip().startswith("#"):
            parts = [p.strip().strip("\"'") for p in m.group(1).split(".")]
            out.setdefault((*table, *parts), n)
    return out


_PROBLEM_KEY = re.compile(r"^([A-Za-z0-9_.\[\]]+)(?::| )")


def _line_of(problem: str, lines: dict[tuple[Any, ...], int]) -> int | None:
    """The line of the key a problem names, or of the nearest table holding it."""
    m = _PROBLEM_KEY.match(problem)
    if not m:
        return None
    loc: list[Any] = []
    for name, index in re.findall(r"([A-Za-z0-9_]+)|\[(\d+)\]", m.group(1)):
        loc.append(int(index) if index else name)
    while loc:
        if tuple(loc) in lines:
            return lines[tuple(loc)]
        loc.pop()
    return None


def _with_secrets(settings: Settings, env: dict[str, str]) -> Settings:
    stored: dict[str, Any] = {}
    spath = secrets_path(settings.state_dir)
    if spath.exists():
        stored = _read_toml(spath)
    ami = env.get("HOTLINE_AMI_SECRET") or stored.get("ami_secret") or ""
    sip: dict[str, SecretStr] = {}
    for ext in settings.phone_extensions:
        pw = env.get(f"HOTLINE_SIP_PASSWORD_{ext}") or stored.get("sip_passwords", {}).get(ext)
        if pw:
            sip[ext] = SecretStr(pw)
    form = env.get("HOTLINE_FORM_SECRET") or stored.get("form_secret") or ""
    trunk = stored.get("trunk", {})
    trunk_pw = env.get("HOTLINE_TRUNK_PASSWORD") or trunk.get("password") or ""
    inbound_pw = env.get("HOTLINE_TRUNK_INBOUND_PASSWORD") or trunk.get("inbound_password") or ""
    sms = stored.get("sms", {})
    sms_pw = env.get("HOTLINE_SMS_PASSWORD") or sms.get("password") or ""
    kannel_pw = env.get("HOTLINE_KANNEL_PASSWORD") or sms.get("kannel_password") or ""
    sms_secret = env.get("HOTLINE_SMS_CALLBACK_SECRET") or sms.get("callback_secret") or ""
    mail = stored.get("email", {})
    imap_pw = env.get("HOTLINE_EMAIL_IMAP_PASSWORD") or mail.get("imap_password") or ""
    smtp_pw = env.get("HOTLINE_EMAIL_SMTP_PASSWORD") or mail.get("smtp_password") or ""
    return settings.model_copy(
        update={
            "ami_secret": SecretStr(ami),
            "form_secret": SecretStr(form),
            "sip_passwords": sip,
            "trunk_password": SecretStr(str(trunk_pw)),
            "trunk_inbound_password": SecretStr(str(inbound_pw)),
            "sms_password": SecretStr(str(sms_pw)),
            "kannel_password": SecretStr(str(kannel_pw)),
            "sms_callback_secret": SecretStr(str(sms_secret)),
            "email_imap_password": SecretStr(str(imap_pw)),
            "email_smtp_password": SecretStr(str(smtp_pw)),
        }
    )


def require_secrets(settings: Settings) -> None:
    """Stop with a clear message if a secret needed to run is missing."""
    problems = []
    if not settings.ami_secret.get_secret_value():
        problems.append("ami_secret: not set (HOTLINE_AMI_SECRET or `hotline setup`)")
    for a in settings.agents:
        if a.extension not in settings.sip_passwords:
            problems.append(
                f"agents.{a.id}: no SIP password (HOTLINE_SIP_PASSWORD_{a.extension} "
                "or `hotline setup`)"
            )
    if settings.trunk.username and not settings.trunk_password.get_secret_value():
        problems.append(
            "trunk.password: the carrier's password for trunk.username is not set "
            "(HOTLINE_TRUNK_PASSWORD, or password under [trunk] in var/secrets.toml)"
        )
    if settings.trunk.inbound_username and not settings.trunk_inbound_password.get_secret_value():
        problems.append(
            "trunk.inbound_password: not set (HOTLINE_TRUNK_INBOUND_PASSWORD or `hotline setup`)"
        )
    if settings.sms.enabled:
        if not settings.sms_password.get_secret_value():
            problems.append(
                "sms.password: the SMSC's password for sms.system_id is not set "
                "(HOTLINE_SMS_PASSWORD, or password under [sms] in var/secrets.toml)"
            )
        generated = {
            "kannel_password": settings.kannel_password,
            "callback_secret": settings.sms_callback_secret,
        }
        for key, value in generated.items():
            if not value.get_secret_value():
                problems.append(f"sms.{key}: not set (`hotline setup` generates it)")
    if settings.email.enabled:
        if not settings.email_imap_password.get_secret_value():
            problems.append(
                "email.imap_password: the mailbox's password for email.imap_user is not set "
                "(HOTLINE_EMAIL_IMAP_PASSWORD, or imap_password under [email] in var/secrets.toml)"
            )
        if settings.email.smtp_user and not settings.email_smtp_password.get_secret_value():
            problems.append(
                "email.smtp_password: the SMTP password for email.smtp_user is not set "
                "(HOTLINE_EMAIL_SMTP_PASSWORD, or smtp_password under [email] in var/secrets.toml)"
            )
    for p in settings.supervision.phones:
        if p.extension not in settings.sip_passwords:
            problems.append(
                f"supervision.phones.{p.extension}: no SIP password "
                f"(HOTLINE_SIP_PASSWORD_{p.extension} or `hotline setup`)"
            )
    if problems:
        raise ConfigError("environment / secrets file", problems)
