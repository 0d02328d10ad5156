"""Errors of the weekly reconciliation (the web layer answers 404 and 409)."""

from __future__ import annotations

from tickets.exceptions import TicketError


class ItemNotFound(TicketError):
    def __init__(self, item_id: int) -> None:
        self.item_id = item_id
        super().__init__(f"no reconciliation line {item_id!r}")


class ItemChanged(TicketError):
    """Someone else decided the line since the writer read it (``actual``: the version
    now), or the ticket's status moved since the officer saw it (``status``)."""

    def __init__(
        self, item_id: int, expected: int, actual: int | None, status: str | None = None
    ) -> None:
        self.item_id = item_id
        self.expected = expected
        self.actual = actual
        self.status = status
        why = (
            f"the ticket is now {status}"
            if status
            else f"version {expected} expected, {actual} now"
        )
        super().__init__(f"reconciliation line {item_id} changed meanwhile ({why})")
