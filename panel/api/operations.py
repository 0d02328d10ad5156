"""The JSON API's operations, declared once: both its routes and its OpenAPI document.

``OPERATIONS`` declares each operation (method, path, handler, body and answer models); the
routes are registered from it and the OpenAPI document (``/api/openapi.json``, built by
:mod:`panel.api.openapi`, read at ``/api/docs``) is made from the same list, so the two
cannot drift apart.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from core.settings import Settings
from panel.api import qa as qa_api
from panel.api import review as review_api
from panel.api.attachments import (
    UPLOAD_FORM,
    AttachmentList,
    download_attachment,
    list_attachments,
    upload_attachment,
)
from panel.api.contract import Contract, enforce
from panel.api.handling import (
    AdoptIn,
    DelegateIn,
    PartAcceptIn,
    PartAnswerIn,
    PartDeadlineIn,
    PartList,
    PartSendBackIn,
    WithdrawIn,
    accept_part,
    adopt_part,
    answer_part,
    delegate_lead,
    delegate_part,
    move_part_deadline,
    send_back_part,
    ticket_parts,
    withdraw_part,
)
from panel.api.inbox import (
    AttachIn,
    MessageList,
    MessageOut,
    PartsIn,
    PartsOut,
    ReplyIn,
    attach_message,
    claim_message,
    get_message,
    list_messages,
    message_conversation,
    message_parts,
    no_content_message,
    reply_message,
    ticket_messages,
)
from panel.api.kb import (
    KbArticleOut,
    KbArticlePatchIn,
    KbSearchOut,
    KbVersionList,
    article_versions,
    create_article,
    get_article,
    search_articles,
    update_article,
)
from panel.api.openapi import Handler, Operation, Param, build_document, docs_page
from panel.api.repeats import (
    QUERY_MAX,
    LinkIn,
    RepeatGroupOut,
    RepeatSuggestionList,
    UnlinkIn,
    link_ticket,
    similar_tickets,
    suggest_repeats,
    ticket_group,
    unlink_ticket,
)
from panel.api.schemas import (
    AcceptIn,
    AgencyList,
    AgencyOut,
    AgencyPatchIn,
    AgentStateOut,
    AnswerIn,
    ApproveIn,
    BlockCandidateList,
    BlockIn,
    BlockList,
    BlockOut,
    CallIn,
    CallOut,
    CloseIn,
    CommentIn,
    EventOut,
    ForwardIn,
    History,
    MeetingIn,
    MeOut,
    PasswordIn,
    PauseIn,
    PauseOut,
    ReopenIn,
    SendBackIn,
    SessionIn,
    SessionOut,
    SuperviseIn,
    SupervisionOut,
    TicketCreateIn,
    TicketList,
    TicketOut,
    TicketPage,
    TicketPatchIn,
    TransferIn,
    TransferList,
    TransferOut,
    TransferTargetList,
    UserCreateIn,
    UserList,
    UserOut,
    UserPatchIn,
    WrapupIn,
    WrapupOut,
)
from panel.api.views import (
    DEFAULT_PER_PAGE,
    MAX_PAGE,
    PREFIX,
    accept_ticket,
    agent_pause,
    agent_resume,
    agent_state,
    answer_ticket,
    approve_ticket,
    block_candidates,
    call_ticket_citizen,
    call_transfers,
    cancel_transfer,
    close_ticket,
    comment_ticket,
    complete_transfer,
    create_agency,
    create_block,
    create_session,
    create_ticket,
    create_user,
    delete_session,
    forward_ticket,
    get_agency,
    get_ticket,
    inbox,
    lift_number_block,
    list_agencies,
    list_blocks,
    list_tickets,
    list_transfer_targets,
    list_users,
    me,
    read_json,
    reopen_ticket,
    schedule_meeting,
    send_back_ticket,
    set_call_wrapup,
    set_user_password,
    supervise_agent,
    ticket_history,
    transfer_live_call,
    unlock_user,
    update_agency,
    update_ticket,
    update_user,
)
from panel.security import PUBLIC, require
from panel.views.common import CTX
from tickets.kb.schemas import ArticleIn
from tickets.kb.service import DEFAULT_LIMIT, MAX_LIMIT
from tickets.models import Domain, Status
from tickets.queries import MAX_PER_PAGE
from tickets.repeats import DEFAULT_LIMIT as REPEATS_DEFAULT
from tickets.repeats import MAX_LIMIT as REPEATS_MAX
from tickets.schemas import MAX_ID, AgencyIn

_P = PREFIX
_INT = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_FLAG = {"type": "string", "enum": ["1"]}
TICKET_QUERY = (
    Param(
        "status",
        {"type": "array", "items": {"type": "string", "enum": [s.value for s in Status]}},
        "Repeat for several statuses.",
    ),
    Param("level", {"type": "integer", "minimum": 1, "maximum": 5}),
    Param("domain", {"type": "string", "enum": [d.value for d in Domain]}),
    Param("topic", {"type": "string", "maxLength": 32}),
    Param("agency_id", _INT),
    Param("created_by", _INT, "The creating user's id."),
    Param("call_id", _INT, "Tickets created from this call."),
    Param("overdue", _FLAG, "Only tickets past their deadline."),
    Param(
        "flagged",
        _FLAG,
        "Only groups of repeat reports flagged for level 3 and not yet answered.",
    ),
    Param("created_from", {"type": "string", "format": "date"}, "Local day, included."),
    Param("created_to", {"type": "string", "format": "date"}, "Local day, included."),
    Param(
        "q",
        {"type": "string", "maxLength": 200},
        "Text in code, phone, name, address or description; case and accents do not "
        "matter. A tracking code whose check symbol is wrong is refused (422, naming it).",
    ),
    Param("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
    Param(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
    ),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST",
        path=f"{_P}/session",
        handler=create_session,
        summary="Sign in",
        answer="A bearer token and the user.",
        tag="session",
        body=SessionIn,
        returns=SessionOut,
        errors=(401, 403, 429),
        description="An account with two-step sign-in on needs `otp` as well: without it, "
        'or with a wrong or already used code, the answer is 401 with `field: "otp"`. '
        "A wrong code counts as a failed sign-in (lockout and per-address limit alike). "
        "An account that must set up two-step sign-in first (`panel.totp_required`) is "
        "signed in, and gets 403 elsewhere until it is set up in the panel.",
    ),
    Operation(
        method="DELETE",
        path=f"{_P}/session",
        handler=delete_session,
        summary="Sign out (end this session)",
        answer="Signed out.",
        tag="session",
        status=204,
    ),
    Operation(
        method="GET",
        path=f"{_P}/me",
        handler=me,
        summary="Who is signed in",
        answer="The user.",
        tag="session",
        returns=MeOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/agent/state",
        handler=agent_state,
        summary="The agent's live state and screen-pop",
        answer="State and pop (null when none).",
        tag="agent",
        returns=AgentStateOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/agent/pause",
        handler=agent_pause,
        summary="Pause taking calls",
        answer="Paused.",
        tag="agent",
        body=PauseIn,
        returns=PauseOut,
        errors=(409, 503),
    ),
    Operation(
        method="POST",
        path=f"{_P}/agent/resume",
        handler=agent_resume,
        summary="Resume taking calls",
        answer="Resumed.",
        tag="agent",
        returns=PauseOut,
        errors=(400, 409, 503),
    ),
    Operation(
        method="POST",
        path=f"{_P}/calls/{{id}}/wrapup",
        handler=set_call_wrapup,
        summary="Set an answered call's wrap-up code",
        answer="The call's code, who set it and when.",
        tag="agent",
        body=WrapupIn,
        returns=WrapupOut,
        description="`wrapup_code` is one of `[wrapup] codes`. An agent sets the code of "
        "their own calls only (another's is 404), during the call and until "
        "`[wrapup] change_minutes` after it ended, unless a supervisor has set it since: "
        "then 409, as for a call that was not answered. Supervisors and admins may set "
        "any answered call's code at any time. Setting the same code again changes nothing.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/agents/{{extension}}/supervise",
        handler=supervise_agent,
        summary="Listen to, whisper to or barge in on an agent's call",
        answer="Started: the supervisor's phone rings.",
        tag="agent",
        status=202,
        body=SuperviseIn,
        returns=SupervisionOut,
        errors=(409, 503),
        description=(
            "Rings the signed-in supervisor's desk phone (their account's extension) "
            "into the agent's call: listen (quiet), whisper (the agent alone hears) or "
            "barge (both hear). Refused with 409 and a `reason`: `no_extension`, "
            "`supervisor_busy`, `agent_not_talking`. Every use is audited."
        ),
    ),
    Operation(
        method="GET",
        path=f"{_P}/blocked-numbers",
        handler=list_blocks,
        summary="The blocked-numbers list and its history",
        answer="Every block, newest first: active, expired and lifted.",
        tag="blocklist",
        returns=BlockList,
        description="A blocked number's calls hear a short message and are offered only "
        "the emergency option (key 0); they never reach a queue. Blocks are never deleted: "
        "`state` says whether each is `active`, `expired` or `lifted`, `calls` how many "
        "calls met it.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/blocked-numbers",
        handler=create_block,
        summary="Block a number for a number of days",
        answer="The block.",
        tag="blocklist",
        status=201,
        body=BlockIn,
        returns=BlockOut,
        description="`days` runs from 1 to `[blocklist] max_days`. The number is kept in "
        "its national form; one already blocked is 409 (lift that block first).",
    ),
    Operation(
        method="POST",
        path=f"{_P}/blocked-numbers/{{id}}/lift",
        handler=lift_number_block,
        summary="Lift a block now",
        answer="The block, lifted.",
        tag="blocklist",
        returns=BlockOut,
        errors=(400, 409),
        description="A block already lifted or expired is 409.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/blocked-numbers/candidates",
        handler=block_candidates,
        summary="Numbers suggested for the list",
        answer="Numbers whose calls got the configured wrap-up codes often enough lately.",
        tag="blocklist",
        returns=BlockCandidateList,
        description="Calls coded with `[blocklist] candidate_codes` at least "
        "`candidate_calls` times in `candidate_days` days, numbers not blocked now. "
        "A suggestion only: nothing is blocked by itself.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/transfer-targets",
        handler=list_transfer_targets,
        summary="Where a live call may be transferred",
        answer="Other teams' queues, supervisors' phones, agencies with a phone, "
        "emergency numbers.",
        tag="agent",
        returns=TransferTargetList,
        description="Only these: a call never goes out through the trunk to a number "
        "somebody typed. Agencies come from the directory (active, with a phone), "
        "emergency numbers from `[transfers] emergency_numbers`.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/calls/{{id}}/transfers",
        handler=transfer_live_call,
        summary="Transfer a live call (blind or attended)",
        answer="The transfer, as the call's chain keeps it.",
        tag="agent",
        status=201,
        body=TransferIn,
        returns=TransferOut,
        errors=(409, 422, 503),
        description="Blind: hands the caller to `target` at once; the agent's phone is "
        "freed. Attended (`kind`): the caller holds while the target rings for the agent "
        "(then complete or cancel). "
        "An agent transfers their own call only (409 `not_yours`); supervisors and admins "
        "any. Refused with 409 and a `reason`: `not_in_call` (not talking now), "
        "`not_yours`, `disabled`, `unknown_target` naming `target` (well formed but not "
        "one of the targets, or the call's own team); 422 for a malformed body; "
        "503 `unavailable` or `failed` when Asterisk did not take it. `note` and `draft` "
        "go to the next agent's screen.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/transfers/{{id}}/complete",
        handler=complete_transfer,
        summary="Complete an attended transfer",
        answer="The transfer, done: the caller talks to the target.",
        tag="agent",
        returns=TransferOut,
        body_optional=True,
        errors=(409, 503),
        description="The agent's leg hangs up and the caller is bridged with the target "
        "they consulted. 409 `no_consultation` when the transfer is not under way, "
        "`not_yours` for another agent's.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/transfers/{{id}}/cancel",
        handler=cancel_transfer,
        summary="Cancel an attended transfer",
        answer="The transfer, cancelled: the agent is back with the caller.",
        tag="agent",
        returns=TransferOut,
        body_optional=True,
        errors=(409, 503),
        description="The target's leg hangs up (AMI CancelAtxfer). Refusals as for complete.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/calls/{{id}}/transfers",
        handler=call_transfers,
        summary="A call's transfer chain",
        answer="Who transferred the call to whom, how and when, oldest first.",
        tag="agent",
        returns=TransferList,
        errors=(404,),
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets",
        handler=list_tickets,
        summary="Search tickets",
        answer="One page, newest first.",
        tag="tickets",
        returns=TicketPage,
        query=TICKET_QUERY,
        errors=(422,),
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets",
        handler=create_ticket,
        summary="Create a ticket",
        answer="The new ticket.",
        tag="tickets",
        status=201,
        body=TicketCreateIn,
        returns=TicketOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}",
        handler=get_ticket,
        summary="One ticket",
        answer="The ticket.",
        tag="tickets",
        returns=TicketOut,
    ),
    Operation(
        method="PATCH",
        path=f"{_P}/tickets/{{code}}",
        handler=update_ticket,
        summary="Correct a ticket",
        answer="The ticket as changed.",
        tag="tickets",
        body=TicketPatchIn,
        returns=TicketOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/history",
        handler=ticket_history,
        summary="A ticket's history",
        answer="The events, oldest first.",
        tag="tickets",
        returns=History,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/forward",
        handler=forward_ticket,
        summary="Forward to an agency",
        answer="The ticket, forwarded.",
        tag="tickets",
        body=ForwardIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/approve",
        handler=approve_ticket,
        summary="Approve a level-3 ticket (and forward it)",
        answer="The ticket, approved.",
        tag="tickets",
        body=ApproveIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/accept",
        handler=accept_ticket,
        summary="Accept (the agency)",
        answer="The ticket, accepted.",
        tag="tickets",
        body=AcceptIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/answer",
        handler=answer_ticket,
        summary="Report the result (the agency)",
        answer="The ticket, answered.",
        tag="tickets",
        body=AnswerIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/send_back",
        handler=send_back_ticket,
        summary="Send back with a reason (the agency)",
        answer="The ticket, returned.",
        tag="tickets",
        body=SendBackIn,
        returns=TicketOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/attachments",
        handler=list_attachments,
        summary="A ticket's files",
        answer="The files you may see, oldest first, and how many are kept from you.",
        tag="tickets",
        returns=AttachmentList,
        description="The citizen's own files (photos of the web form, a mail's "
        "attachments) are shown to an agency only when the citizen agreed that it may "
        "know who reported (`identity_consent`); the files staff and officers attached, "
        "to anyone who may see the ticket.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/attachments/{{attachment}}",
        handler=download_attachment,
        summary="Download one of a ticket's files",
        answer="The file, with the type found by its content when it came in "
        "(`X-Content-Type-Options: nosniff`); a photo inline, anything else as a download.",
        tag="tickets",
        file=True,
        description="A file kept from you (see the list) is 404, as one that does not exist.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/attachments",
        handler=upload_attachment,
        summary="Attach files to a ticket",
        answer="The files attached.",
        tag="tickets",
        status=201,
        form=UPLOAD_FORM,
        returns=AttachmentList,
        description="`multipart/form-data` with one or more parts named `attachment`: a "
        "photo (JPEG, PNG, WebP) or a PDF as `[tickets] attachment_types` allow, found by "
        "its content, each at most `attachment_max_bytes`, the ticket at most "
        "`attachments_per_ticket` files; else 422 naming `attachment`. Anyone who may see "
        "the ticket, but the oversight role. A line `attached` goes in the history; the "
        "ticket's version does not change.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/parts",
        handler=ticket_parts,
        summary="A ticket's agencies: the lead, co-handling agencies, delegations",
        answer="Every part with its agency, deadline, state, answer and the caller's moves.",
        tag="tickets",
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/delegate",
        handler=delegate_lead,
        summary="Delegate the lead's part to a sub-agency (the lead agency)",
        answer="The parts, with the delegation.",
        tag="tickets",
        body=DelegateIn,
        returns=PartList,
        description="Only to an agency below the lead's in the tree (else 422 on "
        "`agency_id`), by the lead's deadline at the latest (else 422 on `deadline_at`). "
        "The lead stays accountable: its part is open until it adopts the answer or "
        "answers itself.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/parts/{{id}}/delegate",
        handler=delegate_part,
        summary="Delegate a part to a sub-agency (the part's agency)",
        answer="The parts, with the delegation.",
        tag="tickets",
        body=DelegateIn,
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/parts/{{id}}/accept",
        handler=accept_part,
        summary="Accept a part (its agency)",
        answer="The parts, this one accepted.",
        tag="tickets",
        body=PartAcceptIn,
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/parts/{{id}}/answer",
        handler=answer_part,
        summary="Answer a part (its agency)",
        answer="The parts, this one answered.",
        tag="tickets",
        body=PartAnswerIn,
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/parts/{{id}}/send_back",
        handler=send_back_part,
        summary="Send a part back with a reason (its agency)",
        answer="The parts, this one returned.",
        tag="tickets",
        body=PartSendBackIn,
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/parts/{{id}}/adopt",
        handler=adopt_part,
        summary="Adopt a sub-agency's answer as the delegating part's (the delegating agency)",
        answer="The parts; a lead's adoption answers the ticket.",
        tag="tickets",
        body=AdoptIn,
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/parts/{{id}}/withdraw",
        handler=withdraw_part,
        summary="Take a delegation back (the delegating agency)",
        answer="The parts, this one withdrawn.",
        tag="tickets",
        body=WithdrawIn,
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/parts/{{id}}/deadline",
        handler=move_part_deadline,
        summary="Move a part's deadline with a reason (the delegating agency for a "
        "delegation, a supervisor for a co-handling agency)",
        answer="The parts, this one with its new deadline.",
        tag="tickets",
        body=PartDeadlineIn,
        returns=PartList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/schedule_meeting",
        handler=schedule_meeting,
        summary="Set the date and place of a level-4 meeting",
        answer="The ticket, scheduled.",
        tag="tickets",
        body=MeetingIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/close",
        handler=close_ticket,
        summary="Close a ticket",
        answer="The ticket, closed.",
        tag="tickets",
        body=CloseIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/reopen",
        handler=reopen_ticket,
        summary="Reopen an answered or closed ticket the citizen is not satisfied with",
        answer="The ticket, back with the supervisors (status reopened).",
        tag="tickets",
        body=ReopenIn,
        returns=TicketOut,
    ),
    # the supervisors' review of the agency's work (tickets/review)
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/refuse_answer",
        handler=review_api.refuse_answer,
        summary="Send the agency's answer back to it with a reason",
        answer="The ticket, back with the agency (status accepted).",
        tag="tickets",
        body=review_api.RefuseAnswerIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/request_extension",
        handler=review_api.request_extension,
        summary="Ask for a later deadline (the agency; one open request at a time)",
        answer="The ticket, its extension_until set.",
        tag="tickets",
        body=review_api.ExtensionIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/grant_extension",
        handler=review_api.grant_extension,
        summary="Grant the open extension request: the deadline moves",
        answer="The ticket, with its new deadline.",
        tag="tickets",
        body=review_api.GrantExtensionIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/refuse_extension",
        handler=review_api.refuse_extension,
        summary="Refuse the open extension request with a reason",
        answer="The ticket, its deadline unchanged.",
        tag="tickets",
        body=review_api.RefuseExtensionIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/call",
        handler=call_ticket_citizen,
        summary="Call the citizen (your phone rings first)",
        answer="The call placed: your phone rings; when you answer, the citizen is dialled.",
        tag="tickets",
        status=202,
        body=CallIn,
        returns=CallOut,
        errors=(503,),
        body_optional=True,
        description="Rings the caller's own phone (their extension); once they answer, the "
        "ticket's `citizen_phone` is dialled over the trunk, showing the hotline's number, "
        "and the call is recorded and listed with the ticket. No body (or `{}`). "
        "A second request while that call is under way answers with the same call "
        "(`repeated: true`) and places none. 409 with `detail` naming why not: "
        "`no_phone` (no extension), `not_registered` (the phone is not registered), "
        "`busy` (it is ringing or in a call), `already_calling` (a call from another "
        "ticket is under way), `not_dialable` (with `fields.citizen_phone`: the ticket's "
        "number cannot be dialled); 503 when the telephone system does not answer.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/comment",
        handler=comment_ticket,
        summary="Add a note to the history",
        answer="The history event.",
        tag="tickets",
        status=201,
        body=CommentIn,
        returns=EventOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/repeats/suggestions",
        handler=suggest_repeats,
        summary="Earlier reports likely of the same matter as a report being written",
        answer="Suggestions, likeliest first: each a group's ticket (or a report in none).",
        tag="repeats",
        returns=RepeatSuggestionList,
        query=(
            *(
                Param(name, {"type": "string", "maxLength": most})
                for name, most in QUERY_MAX.items()
            ),
            Param(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": REPEATS_MAX,
                    "default": REPEATS_DEFAULT,
                },
            ),
        ),
        errors=(422,),
        description="Reports created within `[tickets] repeat_window_days`: the same "
        "phone, or enough of the same words (pairs of adjacent words, with or without "
        "Vietnamese diacritics), ranked higher with the same topic and district.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/similar",
        handler=similar_tickets,
        summary="Earlier reports likely of the same matter as this ticket",
        answer="Suggestions, likeliest first, older than the ticket and outside its group.",
        tag="repeats",
        returns=RepeatSuggestionList,
        query=(
            Param(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": REPEATS_MAX,
                    "default": REPEATS_DEFAULT,
                },
            ),
        ),
        errors=(422,),
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/group",
        handler=ticket_group,
        summary="The ticket's group of repeat reports",
        answer="The group's ticket and the reports linked to it.",
        tag="repeats",
        returns=RepeatGroupOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/link",
        handler=link_ticket,
        summary="Link the ticket to an earlier report of the same matter",
        answer="The ticket, in that report's group.",
        tag="repeats",
        body=LinkIn,
        returns=TicketOut,
        description="Supervisors and admins; an agent links the tickets they created "
        "(403 otherwise). The reports linked to this ticket move with it; a group "
        "already answered gives its result at once (and its result call). 409 with "
        "`fields.repeat_of` when the report does not exist or is already in the group; "
        "409 when the ticket changed since `version` (two agents linking it at once: "
        "one wins).",
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/unlink",
        handler=unlink_ticket,
        summary="Take the ticket out of its group",
        answer="The ticket, in no group.",
        tag="repeats",
        body=UnlinkIn,
        returns=TicketOut,
        description="Who may link it. 409 with `fields.repeat_of` when it is in no "
        "group or is the group's own ticket.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/inbox",
        handler=inbox,
        summary="The agency's tickets",
        answer="Most urgent deadline first.",
        tag="tickets",
        returns=TicketList,
        query=(Param("closed", _FLAG, "Include closed ones."),),
    ),
    Operation(
        method="GET",
        path=f"{_P}/agencies",
        handler=list_agencies,
        summary="The agency directory",
        answer="A tree (or a flat list with flat=1).",
        tag="agencies",
        returns=AgencyList,
        query=(
            Param("flat", _FLAG, "A flat list, by kind then name."),
            Param("include_inactive", _FLAG, "Include deactivated agencies."),
        ),
    ),
    Operation(
        method="POST",
        path=f"{_P}/agencies",
        handler=create_agency,
        summary="Add an agency",
        answer="The new agency.",
        tag="agencies",
        status=201,
        body=AgencyIn,
        returns=AgencyOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/agencies/{{id}}",
        handler=get_agency,
        summary="One agency",
        answer="The agency.",
        tag="agencies",
        returns=AgencyOut,
    ),
    Operation(
        method="PATCH",
        path=f"{_P}/agencies/{{id}}",
        handler=update_agency,
        summary="Change or (de)activate an agency",
        answer="The agency as changed.",
        tag="agencies",
        body=AgencyPatchIn,
        returns=AgencyOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/kb/articles",
        handler=search_articles,
        summary="Search the procedures knowledge base",
        answer="The articles found, best first.",
        tag="knowledge base",
        returns=KbSearchOut,
        query=(
            Param(
                "q",
                {"type": "string", "maxLength": 200},
                "Words of the question, with or without Vietnamese accents; each must start "
                'a word of the article ("khai sinh", "dang ky tam tru"). Empty: no items.',
            ),
            Param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            ),
        ),
        errors=(422,),
        description="Archived articles are not found. An agent's searches are kept for the "
        "report of searches that found nothing (a query typed on within seconds updates "
        "the last one).",
    ),
    Operation(
        method="POST",
        path=f"{_P}/kb/articles",
        handler=create_article,
        summary="Write a knowledge-base article",
        answer="The new article (version 1).",
        tag="knowledge base",
        status=201,
        body=ArticleIn,
        returns=KbArticleOut,
        description="Without `code`, one is made from the title. A `code` already used, or "
        "an `agency_id` that does not exist or is inactive, is a 409.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/kb/articles/{{id}}",
        handler=get_article,
        summary="One knowledge-base article",
        answer="The article as it reads now.",
        tag="knowledge base",
        returns=KbArticleOut,
        query=(Param("opened", _FLAG, "Count this as opened from a search."),),
    ),
    Operation(
        method="PATCH",
        path=f"{_P}/kb/articles/{{id}}",
        handler=update_article,
        summary="Change a knowledge-base article (a new version)",
        answer="The article as saved.",
        tag="knowledge base",
        body=KbArticlePatchIn,
        returns=KbArticleOut,
        description="Every change is a new version; the earlier ones stay readable. "
        "Nothing changed, no new version.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/kb/articles/{{id}}/versions",
        handler=article_versions,
        summary="Every version of an article",
        answer="Newest first.",
        tag="knowledge base",
        returns=KbVersionList,
    ),
    Operation(
        method="GET",
        path=f"{_P}/users",
        handler=list_users,
        summary="All accounts",
        answer="The accounts.",
        tag="users",
        returns=UserList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/users",
        handler=create_user,
        summary="Create an account",
        answer="The new account.",
        tag="users",
        status=201,
        body=UserCreateIn,
        returns=UserOut,
    ),
    Operation(
        method="PATCH",
        path=f"{_P}/users/{{id}}",
        handler=update_user,
        summary="Change an account",
        answer="The account as changed.",
        tag="users",
        body=UserPatchIn,
        returns=UserOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/users/{{id}}/password",
        handler=set_user_password,
        summary="Set an account's password",
        answer="Password set.",
        tag="users",
        status=204,
        body=PasswordIn,
    ),
    Operation(
        method="POST",
        path=f"{_P}/users/{{id}}/unlock",
        handler=unlock_user,
        summary="Unlock after failed sign-ins",
        answer="The account.",
        tag="users",
        returns=UserOut,
        errors=(400,),
    ),
    # -- quality grading (panel.api.qa, qa.service) --
    Operation(
        method="GET",
        path=f"{_P}/qa/scorecards",
        handler=qa_api.list_scorecards,
        summary="Scorecards, each with its newest version",
        answer="The scorecards.",
        tag="quality",
        returns=qa_api.ScorecardList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/qa/scorecards",
        handler=qa_api.create_scorecard,
        summary="Define a scorecard",
        answer="The scorecard, version 1.",
        tag="quality",
        status=201,
        body=qa_api.ScorecardIn,
        returns=qa_api.ScorecardOut,
        description="Each criterion has a weight (1 to 100) and is marked 0 to 4 (or not "
        "applicable); a fatal criterion is passed or failed, and failed makes the score 0. "
        "Criterion ids are made from the labels. Editing (on the panel page) makes a new "
        "version; grades keep the version they used.",
    ),
    Operation(
        method="GET",
        path=f"{_P}/qa/worklist",
        handler=qa_api.qa_work_list,
        summary="The graders' work list",
        answer="Calls to grade (done=1: calls graded), newest first.",
        tag="quality",
        returns=qa_api.WorkList,
        query=(Param("done", _FLAG, "The calls already graded."),),
        description="Roles in `[qa] graders` only (else 403).",
    ),
    Operation(
        method="POST",
        path=f"{_P}/qa/draws",
        handler=qa_api.draw_week,
        summary="Draw a week's calls to grade",
        answer="The draw: its seed and how many calls it drew at random.",
        tag="quality",
        status=201,
        body=qa_api.DrawIn,
        returns=qa_api.DrawOut,
        description="Adds the week's reopened and low-rated calls, then `[qa] "
        "calls_per_agent` answered, recorded calls per agent at random, stratified by "
        "shift; never a call already listed. A week is drawn once (409 after).",
    ),
    Operation(
        method="GET",
        path=f"{_P}/qa/calls/{{id}}/grades",
        handler=qa_api.call_grades,
        summary="A call's grades",
        answer="The grades (an agent: of their own calls only).",
        tag="quality",
        returns=qa_api.GradeList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/qa/calls/{{id}}/grade",
        handler=qa_api.grade_call,
        summary="Grade a call",
        answer="The grade and its score (0 to 100).",
        tag="quality",
        body=qa_api.GradeIn,
        returns=qa_api.GradeOut,
        description="One grade per grader and call (sent again, it replaces the marks "
        "until disputed); a second grader's grade feeds the calibration view. 404 for "
        "an unknown call or scorecard version; 422 names the marks refused.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/qa/calls/{{id}}/comments",
        handler=qa_api.comment_call,
        summary="Comment on a moment of a call's recording",
        answer="The comment.",
        tag="quality",
        status=201,
        body=qa_api.QaCommentIn,
        returns=qa_api.QaCommentOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/qa/grades/{{id}}/dispute",
        handler=qa_api.dispute_grade,
        summary="Dispute a grade of your call",
        answer="The grade, disputed.",
        tag="quality",
        body=qa_api.DisputeIn,
        returns=qa_api.GradeOut,
        description="The graded agent only, once per grade, within `[qa] dispute_days` "
        "(409 after, with a `reason`).",
    ),
    Operation(
        method="POST",
        path=f"{_P}/qa/grades/{{id}}/resolve",
        handler=qa_api.resolve_grade,
        summary="Answer a dispute",
        answer="The grade: upheld, or changed to the new score.",
        tag="quality",
        body=qa_api.ResolveIn,
        returns=qa_api.GradeOut,
    ),
    # -- the SMS and email desk (panel/api/inbox.py) ---------------------------------
    Operation(
        method="GET",
        path=f"{_P}/messages",
        handler=list_messages,
        summary="The messages waiting on your desks",
        answer="Messages in not yet decided, oldest first; a mail with its `email` fields.",
        tag="messages",
        returns=MessageList,
        description="An agent's desk is their team's; supervisors and admins see every "
        "team's. A message from a number with an open ticket is attached to it on "
        "arrival and does not wait here. A mail (channel `email`) carries `email`: its "
        "subject, sender, thread (Message-ID, In-Reply-To, References), its HTML as "
        "sanitised when stored and its attachments by id with their download address; "
        "its text is `body`.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/messages/parts",
        handler=message_parts,
        summary="How many SMS parts a text takes",
        answer="The coding (gsm7 without Vietnamese diacritics, else ucs2), the length "
        "in it and the number of parts. Nothing is sent.",
        tag="messages",
        body=PartsIn,
        returns=PartsOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/messages/{{id}}",
        handler=get_message,
        summary="One message",
        answer="The message (a mail with its `email` fields).",
        tag="messages",
        returns=MessageOut,
        description="A message on one of your desks (else 404).",
    ),
    Operation(
        method="GET",
        path=f"{_P}/messages/{{id}}/conversation",
        handler=message_conversation,
        summary="A message's conversation",
        answer="The message, our answers and the same citizen's other messages, in time "
        "order, mails with their `email` fields.",
        tag="messages",
        returns=MessageList,
        description="What the message's page shows: the conversation with that phone "
        "number (SMS and voice messages together) or that mail address, at most 200 "
        "messages. A message on one of your desks (else 404).",
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/messages",
        handler=ticket_messages,
        summary="A ticket's conversation with the citizen",
        answer="The messages that became or joined the ticket and ours about it or in "
        "answer to them, in time order, whatever the channel; mails with their `email` "
        "fields, their attachments' `url` the ticket's own.",
        tag="messages",
        returns=MessageList,
        description="For staff who may see the ticket: a restricted report only to those "
        "cleared for it (403 otherwise, as for the ticket), and the look is written in "
        "its audit log.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/messages/{{id}}/claim",
        handler=claim_message,
        summary="Claim a message",
        answer="The message, now yours.",
        tag="messages",
        returns=MessageOut,
        errors=(409,),
        description="409 when someone else has it or it is decided already.",
    ),
    Operation(
        method="POST",
        path=f"{_P}/messages/{{id}}/no-content",
        handler=no_content_message,
        summary="Mark a message as having no content",
        answer="The message, decided.",
        tag="messages",
        returns=MessageOut,
        errors=(409,),
    ),
    Operation(
        method="POST",
        path=f"{_P}/messages/{{id}}/attach",
        handler=attach_message,
        summary="Attach a message to a ticket",
        answer="The message, attached.",
        tag="messages",
        body=AttachIn,
        returns=MessageOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/messages/{{id}}/reply",
        handler=reply_message,
        summary="Answer a message on its channel",
        answer="Our message out: queued, or failed with the gateway's reason.",
        tag="messages",
        status=201,
        body=ReplyIn,
        returns=MessageOut,
        description="The answer is stored first, then handed to the gateway (Kannel's "
        "sendsms); its delivery reports move its state (sent, delivered, failed).",
    ),
)


# -- the document -----------------------------------------------------------------------


# where the public site serves the Open311 sub-app's OpenAPI document
OPEN311_DOCUMENT = "/open311/v2/openapi.json"


def document(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI document; with ``settings``, the configured topics, phones'
    extensions (agents' and supervisors' desk phones) and wrap-up codes are the only
    values it allows for them (they are the only ones accepted)."""
    if settings is None:
        return _document((), (), ())
    return _document(
        tuple(t.id for t in settings.tickets.topics),
        tuple(settings.phone_extensions),
        tuple(w.id for w in settings.wrapup.codes),
        settings.blocklist.max_days,
    )


@functools.cache
def _document(
    topics: tuple[str, ...],
    extensions: tuple[str, ...],
    wrapup_codes: tuple[str, ...],
    block_max_days: int | None = None,
) -> dict[str, Any]:
    doc = build_document(
        OPERATIONS,
        title="Hotline panel API",
        version="1",
        description="Every action of the hotline's web panel, as JSON. Sign in with "
        "POST /api/v1/session and send the token as `Authorization: Bearer <token>`. "
        "The public Open311 GeoReport v2 API (published reports; new ones with an API key "
        "issued on /admin/api-keys) is served by the public site and has its own document "
        f"there: {OPEN311_DOCUMENT}.",
    )
    if topics:
        _allow(doc, "topic", list(topics))
    if extensions:
        _allow(doc, "extension", list(extensions))
    if wrapup_codes:
        _allow(doc, "wrapup_code", list(wrapup_codes))
    if block_max_days is not None:
        # a block's length: the configured maximum is the only one accepted
        doc["components"]["schemas"]["BlockIn"]["properties"]["days"]["maximum"] = block_max_days
    # the public API's own document (open311/openapi.py says why it is a separate one)
    doc["externalDocs"] = {
        "description": "Open311 GeoReport v2 (the public site's API)",
        "url": OPEN311_DOCUMENT,
    }
    return doc


def _allow(doc: dict[str, Any], name: str, values: list[str]) -> None:
    """Every body property and query parameter called ``name`` takes only ``values``."""
    allowed = {"type": "string", "enum": values}
    for schema in doc["components"]["schemas"].values():
        prop = schema.get("properties", {}).get(name)
        if prop is None:
            continue
        nullable = any(s.get("type") == "null" for s in prop.get("anyOf", ()))
        schema["properties"][name] = (
            {"anyOf": [allowed, {"type": "null"}]} if nullable else dict(allowed)
        )
    for item in doc["paths"].values():
        for op in item.values():
            for param in op.get("parameters", ()):
                if param["name"] == name and param["in"] == "query":
                    param["schema"] = dict(allowed)


@require(PUBLIC)
async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(document(request.app[CTX].settings))


@require(PUBLIC)
async def openapi_docs(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=docs_page(document(request.app[CTX].settings)), content_type="text/html"
    )


def routes() -> list[web.RouteDef]:
    def checked(op: Operation) -> Handler:
        contracts: dict[int, Contract] = {}

        def contract(request: web.Request) -> Contract:
            doc = document(request.app[CTX].settings)
            found = contracts.get(id(doc))
            if found is None:
                item = doc["paths"][op.path][op.method.lower()]
                found = contracts[id(doc)] = Contract(item, doc["components"])
            return found

        return enforce(op.handler, contract, read_json)

    return [
        *(web.route(op.method, op.route_path, checked(op)) for op in OPERATIONS),
        web.get("/api/openapi.json", openapi_json),
        web.get("/api/docs", openapi_docs),
    ]
