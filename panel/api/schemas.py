"""The JSON API's request bodies and answers, as pydantic models.

Bodies (``*In``) refuse unknown keys, so a typo does not look as if it had worked; the ticket
and agency bodies extend the domain's own forms (:mod:`tickets.schemas`), so both front ends
validate alike.  Answers (``*Out``, ``TicketPage``, ...) give every time in UTC, and the
``*_out`` functions at the end turn the domain's rows into them.  The models are also the
OpenAPI document's schemas (:mod:`panel.api.operations`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from accounts import passwords
from accounts.models import Role, User
from callcenter.blocklist import REASON_MAX as BLOCK_REASON_MAX
from callcenter.pause import PAUSE_REASONS
from tickets.agencies import AgencyNode
from tickets.models import Agency, AgencyKind, Channel, Domain, Status, Ticket, TicketEvent
from tickets.numbers import format_number
from tickets.schemas import (
    ADDRESS_MAX,
    AGENCY_CODE_PATTERN,
    EMAIL_SCHEMA,
    MAX_ID,
    NAME_MAX,
    NOT_WS,
    PHONE_SCHEMA,
    PHONE_SEP,
    TEXT_MAX,
    WS,
    OptionalAddress,
    OptionalName,
    TicketCreate,
    TicketUpdate,
    enum_schema,
    text_schema,
)
from tickets.service import event_details

# -- request bodies -------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown keys are refused, not dropped: a typo must not look as if it had worked.
    model_config = ConfigDict(extra="forbid")


# The API checks bodies against the document first (panel.api.contract): JSON types are
# exact there, so these need not be strict (a whole number sent as 3.0 is 3).
Version = Annotated[
    int,
    Field(ge=1, le=MAX_ID, description="The version last read; 409 if it changed since."),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Note = Annotated[
    str | None,
    Field(description="Free text, at most 5000 characters."),
    WithJsonSchema(text_schema(TEXT_MAX, required=False)),
]
Said = Annotated[str, WithJsonSchema(text_schema(TEXT_MAX, required=True))]


class SessionIn(_Body):
    username: Annotated[str, Field(max_length=64)]
    password: Annotated[str, Field(max_length=256)]
    otp: Annotated[
        str | None,
        Field(
            max_length=20,
            description="The 6-digit code of the authenticator app, for an account with "
            "two-step sign-in on; each code is good once.",
        ),
    ] = None


class PauseIn(_Body):
    reason: Annotated[str, Field(json_schema_extra={"enum": list(PAUSE_REASONS)})]


class WrapupIn(_Body):
    """The wrap-up code of an answered call: one of ``[wrapup] codes`` (the document
    lists the configured ones)."""

    wrapup_code: Annotated[str, Field(min_length=1, max_length=32)]


class SuperviseIn(_Body):
    """How the supervisor joins: listen (quiet), whisper (to the agent only) or barge in."""

    mode: Literal["listen", "whisper", "barge"]


# ``callcenter.blocklist.clean_number``: separators, an optional leading +, 3 to 20 digits
BLOCK_NUMBER_PATTERN = rf"^{PHONE_SEP}*\+?{PHONE_SEP}*[0-9]({PHONE_SEP}*[0-9]){{2,19}}{PHONE_SEP}*$"


class BlockIn(_Body):
    """A number to block: its calls hear a message and get only the emergency option."""

    number: Annotated[
        str,
        Field(description="The phone number, in any usual form (kept in national form)."),
        WithJsonSchema({"type": "string", "pattern": BLOCK_NUMBER_PATTERN, "maxLength": 64}),
    ]
    reason: Annotated[str, WithJsonSchema(text_schema(BLOCK_REASON_MAX, required=True))]
    days: Annotated[
        int,
        Field(
            ge=1,
            le=365,
            description="How long the block lasts, from now: 1 to `[blocklist] max_days`.",
        ),
    ]


class TransferIn(_Body):
    """Where the call goes (one of ``GET /api/v1/transfer-targets``: never a typed
    number), a note for whoever takes it and the ticket draft so far."""

    target: Annotated[
        str,
        Field(
            min_length=3,
            max_length=80,
            pattern=r"^(queue|agent|phone|agency|emergency):[A-Za-z0-9_-]{1,70}$",
            description="A target's id: `queue:<team>`, `agent:<extension>`, "
            "`phone:<extension>`, `agency:<id>` or `emergency:<number>`; one that is "
            "well formed but not a target now is 409 `unknown_target`.",
        ),
    ]
    kind: Annotated[
        Literal["blind", "attended"],
        Field(
            description="`blind`: the caller goes at once. `attended`: the caller holds "
            "while the target rings for the agent (not a queue); then "
            "`POST /api/v1/transfers/{id}/complete` or `.../cancel`."
        ),
    ] = "blind"
    note: Annotated[str | None, Field(max_length=2000)] = None
    draft: Annotated[
        dict[str, Annotated[str, Field(max_length=4000)]] | None,
        Field(
            description="The ticket form's fields as the agent left them "
            "(citizen_name, citizen_address, reporter_email, description, district, "
            "domain, topic, level, guidance, agency_id); others are dropped.",
        ),
    ] = None


class TicketCreateIn(TicketCreate):
    """A new report; ``call_id`` links it to the live call (the agent's screen-pop)."""

    call_id: Id | None = None


class TicketPatchIn(TicketUpdate):
    """Only the fields given change; ``version`` is the one last read."""

    version: Version


#: A co-handling agency's id as a key of ``co_deadlines`` (JSON keys are text).
AGENCY_KEY = r"^[1-9][0-9]{0,9}$"
CoDeadlines = Annotated[
    dict[Annotated[str, Field(pattern=AGENCY_KEY)], datetime] | None,
    Field(
        description="Each co-handling agency's own deadline, by the agency's id: ISO 8601 "
        "(without an offset: local time), in the future and no later than the lead's "
        "deadline (else 422 naming `co_deadlines.<id>`); an id that is not one of the "
        "co-handling agencies (given, or kept when `co_agency_ids` is left out) is 409. "
        "A new co-agency left out gets the lead's deadline; a kept one keeps its own."
    ),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "object",
                    "maxProperties": 50,
                    "propertyNames": {"pattern": AGENCY_KEY},
                    "additionalProperties": {"type": "string", "format": "date-time"},
                },
                {"type": "null"},
            ],
        }
    ),
]


def co_deadlines_of(raw: dict[str, datetime] | None, tz: Any) -> dict[int, datetime] | None:
    """``co_deadlines`` as the service takes them: by agency id, local time when no
    offset was given."""
    if raw is None:
        return None
    return {
        int(key): moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
        for key, moment in raw.items()
    }


class ForwardIn(_Body):
    version: Version
    agency_id: Id
    note: Note = None
    co_agency_ids: Annotated[
        list[Id] | None,
        Field(
            max_length=50,
            description="The co-handling agencies (each answers its own part; the lead "
            "combines): exactly these from now on. Left out: unchanged.",
        ),
    ] = None
    co_deadlines: CoDeadlines = None


class ApproveIn(_Body):
    version: Version
    agency_id: Annotated[
        Id | None, Field(description="Forward at once to this agency (else the pre-filled one).")
    ] = None
    note: Note = None
    co_agency_ids: Annotated[
        list[Id] | None,
        Field(
            max_length=50,
            description="The co-handling agencies (each answers its own part; the lead "
            "combines): exactly these from now on. Left out: unchanged.",
        ),
    ] = None
    co_deadlines: CoDeadlines = None


class AcceptIn(_Body):
    version: Version


class CallIn(_Body):
    """Nothing to send: the ticket gives the number, the caller's account their phone."""


class AnswerIn(_Body):
    version: Version
    result: Annotated[Said, Field(description="The agency's result, told to the citizen.")]


class SendBackIn(_Body):
    version: Version
    reason: Annotated[Said, Field(description="Why the agency returns the ticket.")]


class ReopenIn(_Body):
    version: Version
    reason: Annotated[
        Said, Field(description="Why the citizen is not satisfied; kept in the history.")
    ]


class MeetingIn(_Body):
    version: Version
    meeting_at: Annotated[
        datetime,
        Field(description="ISO 8601; without an offset it is local time (settings timezone)."),
    ]
    meeting_place: Annotated[
        str,
        Field(description="At most 300 characters."),
        WithJsonSchema(text_schema(ADDRESS_MAX, required=True)),
    ]


class CloseIn(_Body):
    version: Version
    note: Note = None
    letter: Annotated[
        str | None,
        Field(description="The thank-you letter (level 5 proposals only)."),
        WithJsonSchema(text_schema(TEXT_MAX, required=False)),
    ] = None


class CommentIn(_Body):
    note: Annotated[Said, Field(description="At most 5000 characters.")]


class AgencyPatchIn(_Body):
    """Only the fields given change; ``active`` false deactivates, true reactivates."""

    version: Version
    parent_id: Id | None = None
    kind: Annotated[AgencyKind | None, WithJsonSchema(enum_schema(AgencyKind))] = None
    code: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "pattern": AGENCY_CODE_PATTERN, "maxLength": 40}),
    ] = None
    name: Annotated[str | None, WithJsonSchema(text_schema(NAME_MAX, required=True))] = None
    contact_name: OptionalName = None
    phone: Annotated[str | None, WithJsonSchema(PHONE_SCHEMA)] = None
    email: Annotated[str | None, WithJsonSchema(EMAIL_SCHEMA)] = None
    address: OptionalAddress = None
    active: Annotated[bool | None, WithJsonSchema({"type": "boolean"})] = None


RoleName = Annotated[str, Field(json_schema_extra={"enum": [r.value for r in Role]})]
Language = Annotated[str, Field(json_schema_extra={"enum": ["vi", "en"]})]
USERNAME_SCHEMA = {"type": "string", "pattern": rf"^{WS}*[a-zA-Z0-9][a-zA-Z0-9._-]{{1,63}}{WS}*$"}
# passwords.password_problem: 10 to 256 characters, some not white space, at least 4
# different characters (the look-aheads find 4 distinct ones in order)
PASSWORD_SCHEMA = {
    "type": "string",
    "minLength": passwords.MIN_LENGTH,
    "maxLength": passwords.MAX_LENGTH,
    "pattern": rf"^(?=[\s\S]*{NOT_WS})[\s\S]*?([\s\S])[\s\S]*?(?!\1)([\s\S])[\s\S]*?(?!\1|\2)"
    r"([\s\S])[\s\S]*?(?!\1|\2|\3)[\s\S]",
    "description": "10 to 256 characters, at least 4 of them different.",
}
DISPLAY_NAME_SCHEMA = text_schema(NAME_MAX, required=True)
# an agent needs an extension of the configuration (the document lists them) and only an
# agent has one; an agency officer needs the agency
_ROLE_RULES = {
    "allOf": [
        {
            "if": {"properties": {"role": {"const": "agent"}}, "required": ["role"]},
            "then": {"required": ["extension"], "properties": {"extension": {"type": "string"}}},
        },
        {
            "if": {"properties": {"role": {"not": {"const": "agent"}}}, "required": ["role"]},
            "then": {"properties": {"extension": {"anyOf": [{"type": "null"}, {"const": ""}]}}},
        },
        {
            "if": {"properties": {"role": {"const": "agency"}}, "required": ["role"]},
            "then": {"required": ["agency_id"], "properties": {"agency_id": {"type": "integer"}}},
        },
    ]
}


class UserCreateIn(_Body):
    model_config = ConfigDict(json_schema_extra=_ROLE_RULES)

    username: Annotated[str, WithJsonSchema(USERNAME_SCHEMA)]
    display_name: Annotated[str, WithJsonSchema(DISPLAY_NAME_SCHEMA)]
    role: RoleName
    password: Annotated[str, WithJsonSchema(PASSWORD_SCHEMA)]
    extension: Annotated[str | None, Field(description="Required for an agent.")] = None
    agency_id: Annotated[Id | None, Field(description="Required for an agency officer.")] = None
    language: Language | None = None


class UserPatchIn(_Body):
    model_config = ConfigDict(json_schema_extra=_ROLE_RULES)

    display_name: Annotated[str | None, WithJsonSchema(DISPLAY_NAME_SCHEMA)] = None
    role: Annotated[
        str | None, WithJsonSchema({"type": "string", "enum": [r.value for r in Role]})
    ] = None
    extension: Annotated[
        str | None,
        Field(description="An agent's; refused for an account of another role."),
        WithJsonSchema({"type": "string"}),
    ] = None
    agency_id: Id | None = None
    language: Annotated[str | None, WithJsonSchema({"type": "string", "enum": ["vi", "en"]})] = None
    active: Annotated[bool | None, WithJsonSchema({"type": "boolean"})] = None


class PasswordIn(_Body):
    password: Annotated[str, WithJsonSchema(PASSWORD_SCHEMA)]


# -- answers --------------------------------------------------------------------------


def as_utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive one is taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UTCTime = Annotated[datetime, AfterValidator(as_utc)]


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: RoleName
    extension: str | None
    agency_id: int | None
    language: str
    active: bool
    locked_until: UTCTime | None
    last_login_at: UTCTime | None
    created_at: UTCTime
    password_changed_at: UTCTime


class UserList(BaseModel):
    items: list[UserOut]


class SessionOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    csrf: str = Field(description="For the X-CSRF-Token header if the token rides in a cookie.")
    expires_in: int = Field(description="Seconds of inactivity before the session ends.")
    user: UserOut


class MeOut(BaseModel):
    user: UserOut
    csrf: str = Field(description="The session's CSRF token (X-CSRF-Token header).")


class AgentStateOut(BaseModel):
    extension: str | None
    state: dict[str, Any] | None = Field(description="Live state (free, talking, paused, ...).")
    pop: dict[str, Any] | None = Field(description="The screen-pop of the call now ringing.")


class PauseOut(BaseModel):
    paused: bool
    reason: str | None


class CallOut(BaseModel):
    """A call to the citizen, placed from a ticket: the agent's phone rings first."""

    id: int = Field(description="The call record's id (the ticket page lists it).")
    uniqueid: str
    ticket: str = Field(description="The ticket's tracking code.")
    number: str = Field(description="The number dialled (the ticket's citizen_phone).")
    caller_id: str | None = Field(description="The hotline number the citizen sees.")
    extension: str = Field(description="The agent's phone, rung first.")
    started_at: UTCTime
    repeated: bool = Field(
        description="True when this agent's call from this ticket was already under way "
        "(a second click): that call, and no other, is answered."
    )


class WrapupOut(BaseModel):
    call_id: int
    wrapup_code: str
    content: bool = Field(description="Whether the code counts as a call with usable content.")
    wrapup_by: str = Field(description="Who set the code (the user's name).")
    wrapup_at: UTCTime


class SupervisionOut(BaseModel):
    """A supervision started: the supervisor's phone is ringing."""

    id: int
    mode: str
    agent_extension: str
    supervisor_extension: str
    call_uniqueid: str | None


class BlockOut(BaseModel):
    """A block on a number: never deleted (lifted or expired ones stay, as the audit)."""

    id: int
    number: str
    state: Literal["active", "expired", "lifted"]
    reason: str
    created_by: str
    created_at: UTCTime
    expires_at: UTCTime
    removed_by: str | None
    removed_at: UTCTime | None
    calls: int = Field(description="Calls from the number that met this block.")


class BlockList(BaseModel):
    items: list[BlockOut]


class BlockCandidateOut(BaseModel):
    """A number suggested for the list by its calls' wrap-up codes (nothing is blocked
    by itself)."""

    number: str
    calls: int
    codes: list[str]
    last_at: UTCTime


class BlockCandidateList(BaseModel):
    items: list[BlockCandidateOut]


class TransferTargetOut(BaseModel):
    id: str = Field(description="What `target` takes in a transfer.")
    kind: Annotated[
        str,
        Field(json_schema_extra={"enum": ["queue", "agent", "phone", "agency", "emergency"]}),
    ]
    label: str
    number: str | None = Field(description="Dialled over the trunk (agency, emergency).")


class TransferTargetList(BaseModel):
    items: list[TransferTargetOut]


class TransferOut(BaseModel):
    """One link of a call's transfer chain."""

    id: int
    call_id: int
    kind: Annotated[str, Field(json_schema_extra={"enum": ["blind", "attended"]})]
    target: str = Field(description="The target's id (`queue:party`, ...).")
    target_label: str
    number: str | None = Field(description="What the trunk dialled, for agencies and 113-115.")
    from_extension: str | None = Field(description="The phone that had the call.")
    by: str = Field(description="Who asked (the user's name).")
    note: str | None
    requested_at: UTCTime
    done_at: UTCTime | None
    result: str | None = Field(
        description="`transferred` (Asterisk took it), `failed`, `cancelled` (an attended "
        "transfer the agent took back); null while under way (an attended one consulting)."
    )


class TransferList(BaseModel):
    items: list[TransferOut]


class AgencyRef(BaseModel):
    id: int
    name: str


class TicketOut(BaseModel):
    id: int
    code: str
    number: str = Field(
        description="The ticket number, all digits, grouped for reading out "
        "(9 digits and a check digit).",
        examples=["123 456 789 0"],
    )
    status: Annotated[str, Field(json_schema_extra={"enum": [s.value for s in Status]})]
    level: int
    domain: Annotated[str, Field(json_schema_extra={"enum": [d.value for d in Domain]})]
    topic: str
    channel: Annotated[str, Field(json_schema_extra={"enum": [c.value for c in Channel]})]
    citizen_phone: str | None
    citizen_name: str | None
    citizen_address: str | None
    reporter_email: str | None
    district: str | None = Field(
        description="The district the report is about: a district code of the agency "
        "directory, or free text."
    )
    publish_consent: bool = Field(
        description="The citizen agreed that the report may be published once completed."
    )
    identity_consent: bool = Field(
        description="The citizen agreed that the agency may see their name, phone, email and "
        "address; without it an agency reads a pseudonym (“Công dân #…”) and no contact."
    )
    withheld: bool = Field(description="An admin withheld it from publication.")
    description: str
    guidance: str | None
    kb_article_id: int | None = Field(
        None, description="The knowledge-base article the guidance came from."
    )
    kb_article_version: int | None = Field(None, description="That article's version then.")
    agency: AgencyRef | None
    approved_by: int | None
    forwarded_at: UTCTime | None
    deadline_at: UTCTime | None
    overdue: bool = Field(description="The deadline has passed and the ticket is still open.")
    escalated_at: UTCTime | None
    escalations: int
    reopens: int = Field(description="How many times the ticket was reopened.")
    result: str | None
    return_reason: str | None
    extension_until: UTCTime | None = Field(
        None, description="The deadline the agency's open extension request asks for."
    )
    meeting_at: UTCTime | None
    meeting_place: str | None
    letter: str | None
    closing_note: str | None
    created_by: int | None
    created_at: UTCTime
    updated_at: UTCTime
    closed_at: UTCTime | None
    version: int
    call_id: int | None
    repeat_of: int | None = Field(
        None,
        description="Repeat reports: the id of the group's ticket this one was linked to "
        "(null when in no group, and for the group's own ticket).",
    )
    repeats: int = Field(0, description="On a group's ticket: how many reports are linked to it.")
    repeat_flagged_at: UTCTime | None = Field(
        None,
        description="When the group reached `[tickets] repeat_flag_after` reports "
        "unanswered: flagged for level 3.",
    )


# Columns copied as they are (the rest is computed).
_TICKET_COLUMNS = tuple(n for n in TicketOut.model_fields if n not in ("agency", "overdue"))


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int
    page: int
    per_page: int


class TicketList(BaseModel):
    items: list[TicketOut]


class EventOut(BaseModel):
    id: int
    at: UTCTime
    actor_id: int | None
    actor_name: str
    action: str
    from_status: str | None
    to_status: str | None
    details: dict[str, Any]


class History(BaseModel):
    items: list[EventOut]


class AgencyOut(BaseModel):
    id: int
    parent_id: int | None
    kind: Annotated[str, Field(json_schema_extra={"enum": [k.value for k in AgencyKind]})]
    code: str
    name: str
    contact_name: str | None
    phone: str | None
    email: str | None
    address: str | None
    active: bool
    created_at: UTCTime
    updated_at: UTCTime
    version: int


class AgencyTreeNode(AgencyOut):
    children: list[AgencyTreeNode] = Field(
        default_factory=list, description="Sub-agencies (always empty with flat=1)."
    )


class AgencyList(BaseModel):
    items: list[AgencyTreeNode]


# -- from the domain's rows -------------------------------------------------------------


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def agency_out(agency: Agency) -> AgencyOut:
    return AgencyOut.model_validate(agency, from_attributes=True)


def tree_out(node: AgencyNode) -> AgencyTreeNode:
    fields = agency_out(node.agency).model_dump()
    return AgencyTreeNode(**fields, children=[tree_out(c) for c in node.children])


def ticket_out(ticket: Ticket, agency_names: dict[int, str], now: datetime) -> TicketOut:
    data: dict[str, Any] = {name: getattr(ticket, name) for name in _TICKET_COLUMNS}
    agency_id = ticket.agency_id
    data["agency"] = (
        {"id": agency_id, "name": agency_names.get(agency_id, "")} if agency_id else None
    )
    data["number"] = format_number(ticket.number)
    # As the ticket page shows it: any open ticket past its deadline.
    data["overdue"] = bool(
        ticket.deadline_at and ticket.status != Status.CLOSED and ticket.deadline_at < now
    )
    return TicketOut.model_validate(data)


def event_out(event: TicketEvent) -> EventOut:
    return EventOut(
        id=event.id,
        at=event.at,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        action=event.action,
        from_status=event.from_status,
        to_status=event.to_status,
        details=event_details(event),
    )
