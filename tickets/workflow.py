"""Who may move a ticket where: the workflow's one table of transitions.

``TRANSITIONS`` lists, for each action on an existing ticket, its grants: which roles, on
whose tickets, from which statuses, and under which further condition (the level, the
approval).  The service refuses what no grant allows (:func:`check_actor`, then
:func:`check_move`); the panel offers what :func:`available` returns.  Both read the same
lines, so a button is shown exactly when the service would accept it.

A refusal is one of two kinds, checked in this order with the version check between them:

1. Forbidden: no grant of the actor's role for the action (checked before anything is read:
   :func:`check_role`), or none whose ``whose`` accepts this actor on this ticket (another
   agent's ticket, another agency's);
2. InvalidTransition: the actor may act on the ticket, but no grant allows the move from
   its status and level.

Reopening.  A citizen not satisfied with the answer (or the result of a closed report) can
have it reopened, with a reason: by a supervisor or an admin from the ticket page, by the
agent who created it when the citizen calls back, or by the citizen in the phone survey
(:data:`accounts.identity.CITIZEN`).  It goes to a status of its own, ``reopened``, rather
than back to NEW with a counter: NEW means "level 2/3 not yet forwarded", while a reopened
report may be of any level (a level-1 answer given on the call, a level-4 meeting held),
may have been forwarded and approved before, and is a different piece of work for the
supervisors (a complaint about the handling, with its reason in the history).  From
``reopened`` the supervisors forward it again (levels 2 and 3), have it approved, arrange a
meeting (level 4), reclassify it, or close it again with a note; ``reopens`` counts the
rounds for the lists and the agencies' ranking.

Review (tickets.review).  A supervisor may refuse an agency's answer (ANSWERED back to
ACCEPTED, with a reason); the agency may ask for more time while the ticket is with it,
one request at a time (``extension_until`` set), which a supervisor grants or refuses.

Which fields an update may change (the level only in ``LEVEL_EDITABLE``), and what an action
needs (a note, a letter) are the service's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accounts.identity import Actor
from accounts.models import Role
from tickets.exceptions import Forbidden, InvalidTransition
from tickets.models import OPEN_STATUSES, REOPENABLE, WITH_AGENCY, Status, Ticket

STAFF = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
LEADS = (Role.SUPERVISOR, Role.ADMIN)
FORWARDABLE_LEVELS = (2, 3)
# The level may change only before the ticket has gone anywhere (nothing is re-derived).
# A reopened report may be reclassified too: the complaint may show it was misjudged.
LEVEL_EDITABLE = (
    Status.NEW,
    Status.PENDING_APPROVAL,
    Status.MEETING_PENDING,
    Status.PROPOSAL,
    Status.REOPENED,
)
# Closed once done: the citizen told the answer, the meeting held, the letter written.
CLOSE_DONE = (Status.ANSWERED, Status.MEETING_SCHEDULED, Status.PROPOSAL)
# Back on the desk of the agent who created the ticket: the agency answered (tell the
# citizen, then close) or sent it back (correct it for the supervisors to forward again).
NEEDS_CREATOR = (Status.ANSWERED, Status.RETURNED)
# Ending without the agency's answer, the meeting or the letter needs a reason.
# A reopened one closed again needs one too: why the complaint is not followed up.
CLOSE_WITH_NOTE = (
    Status.NEW,
    Status.PENDING_APPROVAL,
    Status.RETURNED,
    Status.MEETING_PENDING,
    Status.REOPENED,
)
# On the supervisors' desk ("needs me" in the panel): to forward (again), approve, arrange,
# thank, or a reopened report to look at again.
NEEDS_SUPERVISOR = (
    Status.REOPENED,
    Status.NEW,
    Status.PENDING_APPROVAL,
    Status.RETURNED,
    Status.MEETING_PENDING,
    Status.PROPOSAL,
)
# With the supervisors, to be forwarded (again).
TO_FORWARD = (Status.NEW, Status.RETURNED, Status.REOPENED)


def anyones(actor: Actor, ticket: Ticket) -> bool:
    return True


def their_own(actor: Actor, ticket: Ticket) -> bool:
    """The agent who created the ticket."""
    return ticket.created_by == actor.id


def their_own_answered(actor: Actor, ticket: Ticket) -> bool:
    """The creating agent, once the agency has answered: closing anything else is not an
    agent's to do at all (Forbidden, not a wrong move)."""
    return their_own(actor, ticket) and ticket.status == Status.ANSWERED


def their_agencys(actor: Actor, ticket: Ticket) -> bool:
    """The agency the ticket was forwarded to.  Its parent sees escalated tickets but
    answers through the sub-agency."""
    return (
        actor.role == Role.AGENCY
        and actor.agency_id is not None
        and ticket.agency_id == actor.agency_id
        and ticket.forwarded_at is not None
    )


def meeting(ticket: Ticket) -> bool:
    """A level-4 report (a reopened one gets its meeting arranged again)."""
    return ticket.level == 4


def always(ticket: Ticket) -> bool:
    return True


def forwardable(ticket: Ticket) -> bool:
    """Level 2, or 3 once the leaders approved it."""
    return ticket.level in FORWARDABLE_LEVELS and (
        ticket.level != 3 or ticket.approved_by is not None
    )


def awaiting_approval(ticket: Ticket) -> bool:
    """Pending approval, or a ticket reclassified to level 3 while NEW and not yet approved."""
    if ticket.level not in FORWARDABLE_LEVELS:
        return False
    return ticket.status == Status.PENDING_APPROVAL or (
        ticket.level == 3 and ticket.approved_by is None
    )


def answered_by_agency(ticket: Ticket) -> bool:
    """An answer of an agency (not a level-4 or 5 ticket closed by the supervisors)."""
    return ticket.agency_id is not None and ticket.forwarded_at is not None


def may_ask_for_time(ticket: Ticket) -> bool:
    """A deadline runs and no extension request is open (one at a time)."""
    return ticket.deadline_at is not None and ticket.extension_until is None


def extension_open(ticket: Ticket) -> bool:
    """The agency asked for more time and no one has decided yet."""
    return ticket.extension_until is not None


@dataclass(frozen=True)
class Grant:
    """Who may take an action on which tickets, and from where."""

    roles: tuple[Role, ...]
    statuses: tuple[Status, ...]
    # Whose tickets the actor may act on (else Forbidden).
    whose: Callable[[Actor, Ticket], bool] = anyones
    # What else the ticket must be for the move to apply (else InvalidTransition).
    when: Callable[[Ticket], bool] = always

    def admits(self, ticket: Ticket) -> bool:
        return ticket.status in self.statuses and self.when(ticket)


# In the order the ticket page shows the buttons; "update" is the edit form.
TRANSITIONS: dict[str, tuple[Grant, ...]] = {
    "forward": (Grant(LEADS, TO_FORWARD, when=forwardable),),
    "approve": (
        Grant(
            LEADS,
            (Status.PENDING_APPROVAL, Status.NEW, Status.REOPENED),
            when=awaiting_approval,
        ),
    ),
    "accept": (Grant((Role.AGENCY,), (Status.FORWARDED,), whose=their_agencys),),
    "answer": (Grant((Role.AGENCY,), WITH_AGENCY, whose=their_agencys),),
    "send_back": (Grant((Role.AGENCY,), WITH_AGENCY, whose=their_agencys),),
    # the supervisors' review of the agency's work (tickets.review)
    "refuse_answer": (Grant(LEADS, (Status.ANSWERED,), when=answered_by_agency),),
    "request_extension": (
        Grant((Role.AGENCY,), WITH_AGENCY, whose=their_agencys, when=may_ask_for_time),
    ),
    "grant_extension": (Grant(LEADS, WITH_AGENCY, when=extension_open),),
    "refuse_extension": (Grant(LEADS, WITH_AGENCY, when=extension_open),),
    "schedule_meeting": (
        Grant(LEADS, (Status.MEETING_PENDING, Status.MEETING_SCHEDULED)),
        Grant(LEADS, (Status.REOPENED,), when=meeting),
    ),
    "close": (
        Grant(LEADS, (*CLOSE_DONE, *CLOSE_WITH_NOTE)),
        Grant((Role.AGENT,), (Status.ANSWERED,), whose=their_own_answered),
    ),
    # the citizen is not satisfied: supervisors and admins (and the survey's citizen, see
    # the module's docstring), or the creating agent when the citizen calls back
    "reopen": (
        Grant(LEADS, REOPENABLE),
        Grant((Role.AGENT,), REOPENABLE, whose=their_own),
    ),
    "update": (
        Grant(LEADS, OPEN_STATUSES),
        Grant((Role.AGENT,), OPEN_STATUSES, whose=their_own),
    ),
}


# Where each action leads (the service writes one of these statuses; "update" changes
# fields, never the status).  The README's diagram of the ticket states is drawn from
# TRANSITIONS and these two tables (tools/workflow_diagram.py; a test keeps it in step).
LEADS_TO: dict[str, tuple[Status, ...]] = {
    "forward": (Status.FORWARDED,),
    # forwarded at once when an agency is named, else NEW to be forwarded later
    "approve": (Status.FORWARDED, Status.NEW),
    "accept": (Status.ACCEPTED,),
    "answer": (Status.ANSWERED,),
    "send_back": (Status.RETURNED,),
    "schedule_meeting": (Status.MEETING_SCHEDULED,),
    "close": (Status.CLOSED,),
    "reopen": (Status.REOPENED,),
    "update": (),
    # the supervisors' review (tickets.review): a refused answer goes back to the agency
    "refuse_answer": (Status.ACCEPTED,),
    # an extension asked, granted or refused: the deadline may move, the status stays
    "request_extension": (),
    "grant_extension": (),
    "refuse_extension": (),
}
# The status a new ticket starts in, by level (tickets.service.TicketService._start):
# level 2 is forwarded at once when the agent named the agency.
STARTS_IN: dict[int, tuple[Status, ...]] = {
    1: (Status.CLOSED,),
    2: (Status.NEW, Status.FORWARDED),
    3: (Status.PENDING_APPROVAL,),
    4: (Status.MEETING_PENDING,),
    5: (Status.PROPOSAL,),
}


def _grants(action: str, actor: Actor) -> list[Grant]:
    return [g for g in TRANSITIONS[action] if actor.role in g.roles]


def _actors_grants(action: str, actor: Actor, ticket: Ticket) -> list[Grant]:
    return [g for g in _grants(action, actor) if g.whose(actor, ticket)]


def check_role(action: str, actor: Actor) -> None:
    """Forbidden unless the actor's role may take ``action`` on some ticket."""
    if not _grants(action, actor):
        raise Forbidden(action, actor.role)


def check_actor(action: str, actor: Actor, ticket: Ticket) -> None:
    """Forbidden unless the actor may take ``action`` on this ticket (in some status)."""
    if not _actors_grants(action, actor, ticket):
        raise Forbidden(action, actor.role)


def check_move(action: str, actor: Actor, ticket: Ticket) -> None:
    """InvalidTransition unless one of the actor's grants allows ``action`` from where the
    ticket is (call :func:`check_actor` first)."""
    if not any(g.admits(ticket) for g in _actors_grants(action, actor, ticket)):
        raise InvalidTransition(action, ticket.status)


def allows(action: str, actor: Actor, ticket: Ticket) -> bool:
    """Whether the service would let the actor take ``action`` on the ticket now (input
    and version aside)."""
    return any(g.admits(ticket) for g in _actors_grants(action, actor, ticket))


def available(actor: Actor, ticket: Ticket) -> list[str]:
    """The actions the actor may take on the ticket now, in table order."""
    return [a for a in TRANSITIONS if allows(a, actor, ticket)]


def may_withhold(actor: Actor) -> bool:
    """Whether the actor may withhold a report from publication, or release it (admins:
    in any status, since a report is published only once closed)."""
    return actor.role == Role.ADMIN


def may_link(actor: Actor, ticket: Ticket) -> bool:
    """Whether the actor may link the ticket to an earlier report, or unlink it
    (tickets.repeats): supervisors and admins, and the agent who created it, in any
    status (a repeat is counted even once its matter is closed)."""
    return actor.role in LEADS or (actor.role == Role.AGENT and their_own(actor, ticket))
