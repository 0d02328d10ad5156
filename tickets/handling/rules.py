"""Who may act on a part of a ticket: the table of the parts' moves.

A *part* is one agency's share of a ticket: the lead's (the ticket itself: its agency,
deadline, status and answer, moved by :mod:`tickets.workflow`'s table) or a row of
:class:`tickets.handling.models.Assignment` (a co-handling agency's, or a delegation's).
``PART_MOVES`` lists, for each action on a part, whose it is (the part's own agency, or
the agency that delegated it) and the states it may be taken from; every move also needs
the ticket to be with its agencies (FORWARDED or ACCEPTED).  The service refuses what the
table does not allow (:func:`check`: Forbidden when the actor is not the one, else
InvalidTransition), and the panel offers what :func:`offered` returns, from the same lines.

The lead's part has one move here, ``delegate``; its accept, answer and send back are the
ticket's own (the lead's answer is the combined one, see :mod:`tickets.handling.rounds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from accounts.identity import Actor
from accounts.models import Role as UserRole
from tickets.exceptions import Forbidden, InvalidTransition
from tickets.handling.models import OPEN, Assignment, Role, State
from tickets.models import WITH_AGENCY, Ticket

# the part's own agency, the agency that delegated it, or whoever gave it: the
# delegating agency for a delegation, the supervisors for a co-handling agency's
Whose = Literal["holder", "delegator", "assigner"]


@dataclass(frozen=True)
class PartMove:
    whose: Whose
    states: tuple[State, ...]
    # only parts of this role (None: any)
    role: Role | None = None


PART_MOVES: dict[str, PartMove] = {
    "accept": PartMove("holder", (State.FORWARDED,)),
    "answer": PartMove("holder", OPEN),
    "send_back": PartMove("holder", OPEN),
    "delegate": PartMove("holder", OPEN),
    # the delegating agency makes the sub-agency's answer its own
    "adopt": PartMove("delegator", (State.ANSWERED,), Role.DELEGATED),
    # the delegating agency takes its delegation back
    "withdraw": PartMove("delegator", OPEN, Role.DELEGATED),
    # who gave the part moves its deadline, with a reason
    "deadline": PartMove("assigner", OPEN),
}


def is_officer_of(actor: Actor, agency_id: int | None) -> bool:
    return actor.role == UserRole.AGENCY and agency_id is not None and actor.agency_id == agency_id


def holds_lead(actor: Actor, ticket: Ticket) -> bool:
    """An officer of the lead agency, while the ticket is with it."""
    return ticket.forwarded_at is not None and is_officer_of(actor, ticket.agency_id)


def _whose(move: PartMove, actor: Actor, part: Assignment) -> bool:
    if move.role is not None and part.role != move.role:
        return False
    if move.whose == "assigner" and part.role == Role.CO:
        return actor.role in (UserRole.SUPERVISOR, UserRole.ADMIN)
    agency = part.agency_id if move.whose == "holder" else part.from_agency_id
    return is_officer_of(actor, agency)


def check(action: str, actor: Actor, ticket: Ticket, part: Assignment | None) -> None:
    """Refuse the move unless the table allows it: ``part`` None is the lead's part."""
    if part is None:
        if action != "delegate" or not holds_lead(actor, ticket):
            raise Forbidden(action, actor.role)
        if ticket.status not in WITH_AGENCY:
            raise InvalidTransition(action, ticket.status)
        return
    move = PART_MOVES.get(action)
    if move is None or not _whose(move, actor, part):
        raise Forbidden(action, actor.role)
    if part.status not in move.states:
        raise InvalidTransition(action, part.status)
    if ticket.status not in WITH_AGENCY:
        raise InvalidTransition(action, ticket.status)


def allows(action: str, actor: Actor, ticket: Ticket, part: Assignment | None) -> bool:
    try:
        check(action, actor, ticket, part)
    except (Forbidden, InvalidTransition):
        return False
    return True


def offered(actor: Actor, ticket: Ticket, part: Assignment | None) -> list[str]:
    """The moves the actor may make on the part now, in table order."""
    return [a for a in PART_MOVES if allows(a, actor, ticket, part)]
