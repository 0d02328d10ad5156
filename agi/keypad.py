"""Keying a report's tracking number on the phone: a small state machine, no I/O.

The caller hears "key the 10-digit number, then #; for an operator press 1".  Keys
come one at a time (:meth:`NumberEntry.push`), and a pause in keying ends the entry
(:meth:`NumberEntry.timeout`).  The entry ends as one :class:`Entered`:

- ``operator``: a lone 1, then # or a pause (a number never is "1");
- ``number``: 10 digits whose Damm check digit is right (then # or a pause);
- ``wrong``: anything else keyed (a wrong check digit, too few or too many digits, a
  leading 0): the caller is asked to key it again, nothing is looked up;
- ``empty``: nothing keyed (a pause, or # alone).

``*`` starts the number again.  Too many digits end the entry at once as ``wrong``,
so a caller keying on and on is answered, not left waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tickets.numbers import LENGTH, is_valid

OPERATOR_KEY = "1"
# Past this many digits it cannot be a number; a couple more than a number so that
# one extra digit is "wrong", not cut silently into a right-looking one.
MAX_DIGITS = LENGTH + 2

Kind = Literal["operator", "number", "wrong", "empty"]


@dataclass(frozen=True)
class Entered:
    kind: Kind
    digits: str = ""


class NumberEntry:
    """The keys of one entry, and what they come to."""

    def __init__(self) -> None:
        self.digits = ""
        self.done: Entered | None = None

    @property
    def may_be_operator(self) -> bool:
        """Only "1" so far: the operator if no other digit follows soon."""
        return self.digits == OPERATOR_KEY

    def push(self, key: str) -> Entered | None:
        """One key; the result once the entry is over, else None."""
        if self.done is not None:
            return self.done
        if key == "#":
            return self._end()
        if key == "*":
            self.digits = ""
            return None
        if not (len(key) == 1 and key.isdigit()):
            return None  # A-D keys and the like: ignored
        self.digits += key
        if len(self.digits) > MAX_DIGITS:
            self.done = Entered("wrong", self.digits)
            return self.done
        return None

    def timeout(self) -> Entered:
        """The caller paused: the entry ends with what was keyed."""
        if self.done is not None:
            return self.done
        return self._end()

    def _end(self) -> Entered:
        d = self.digits
        if not d:
            self.done = Entered("empty")
        elif d == OPERATOR_KEY:
            self.done = Entered("operator", d)
        elif is_valid(d):
            self.done = Entered("number", d)
        else:
            self.done = Entered("wrong", d)
        return self.done
