"""Errors of quality grading; the web layer maps them to 404 and 409."""

from __future__ import annotations


class QaError(Exception):
    """Base of the errors of :mod:`qa`."""


class QaNotFound(QaError):
    """No such scorecard, version, grade, draw or call (``what`` and ``id`` say which)."""

    def __init__(self, what: str, id: object) -> None:
        self.what = what
        self.id = id
        super().__init__(f"no {what} {id!r}")


class QaConflict(QaError):
    """The step is not possible now (``reason``): a second dispute, a second draw of a
    week, a dispute already resolved, a call already in the work list."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)
