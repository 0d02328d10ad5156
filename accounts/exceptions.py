"""Errors of the accounts domain; each carries what went wrong."""

from __future__ import annotations

from datetime import datetime


class AccountError(Exception):
    pass


class SignInFailed(AccountError):
    """Wrong user name or password (which one is never said)."""

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"sign-in failed for {username!r}")


class AccountDisabled(AccountError):
    """The right password for an account an admin deactivated.

    Said only after the password matched: it tells no stranger the name exists.
    """

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"account {username!r} is deactivated")


class AddressBlocked(AccountError):
    """Too many failed sign-ins from this client address: refused until ``until``."""

    def __init__(self, address: str, until: datetime) -> None:
        self.address = address
        self.until = until
        super().__init__(f"sign-ins from {address} refused until {until.isoformat()}")


class AccountLocked(AccountError):
    def __init__(self, username: str, until: datetime) -> None:
        self.username = username
        self.until = until
        super().__init__(f"account {username!r} locked until {until.isoformat()}")


class UserNotFound(AccountError):
    def __init__(self, user: int | str) -> None:
        self.user = user
        super().__init__(f"no user {user!r}")


class AccountInvalid(AccountError):
    """Bad input for an account; ``errors`` maps the field to an English msgid."""

    def __init__(self, errors: dict[str, tuple[str, dict[str, object]]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{f}: {m.format(**p)}" for f, (m, p) in errors.items()))


class SecondFactorRequired(AccountError):
    """The right password for an account with a second factor: a code is needed too.

    Nothing is counted or cleared yet; the sign-in ends with a good code
    (``AccountService.second_step``) or not at all.
    """

    def __init__(self, username: str, user_id: int) -> None:
        self.username = username
        self.user_id = user_id
        super().__init__(f"a code is needed to sign in as {username!r}")


class CodeRejected(SignInFailed):
    """A wrong second-factor code, or one already used: a failed sign-in."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.args = (f"code refused for {username!r}",)
