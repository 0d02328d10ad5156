"""The status page's steps: the history's public lines only, with the agency's name."""

from __future__ import annotations

from public.lookup import steps
from tickets.models import TicketEvent


def test_public_steps_leave_out_the_staff_lines_and_name_no_one():
    from datetime import UTC, datetime

    at = datetime(2026, 12, 1, tzinfo=UTC)

    def e(action, frm, to, details="{}"):
        return TicketEvent(
            ticket_id=1,
            at=at,
            actor_name="Nguyễn Cán Bộ",
            action=action,
            from_status=frm,
            to_status=to,
            details=details,
        )

    history = [
        e("created", None, "pending_approval"),
        e("commented", "pending_approval", "pending_approval", '{"note": "gọi lại ông A"}'),
        e("approved", "pending_approval", "forwarded", '{"agency": [null, 7]}'),
        e("accepted", "forwarded", "accepted"),
        e("updated", "accepted", "accepted", '{"citizen_name": ["A", "B"]}'),
        e("escalated", "accepted", "accepted", '{"agency": 7}'),
        e("answered", "accepted", "answered"),
        e("withheld", "answered", "answered"),
        e("closed", "answered", "closed"),
    ]
    got = [(s.kind, s.agency) for s in steps(history, {7: "UBND Quận 3"})]
    assert got == [
        ("received", None),
        ("approved", None),
        ("forwarded", "UBND Quận 3"),
        ("accepted", "UBND Quận 3"),
        ("escalated", None),
        ("answered", "UBND Quận 3"),
        ("closed", None),
    ]
