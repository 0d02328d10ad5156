"""Accounts: creation by admins, sign-in with lockout, password changes.

The first admin is created from the command line (``hotline create-admin``);
admins create every other account in the panel.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from accounts import passwords, totp
from accounts.exceptions import (
    AccountDisabled,
    AccountInvalid,
    AccountLocked,
    AddressBlocked,
    CodeRejected,
    SecondFactorRequired,
    SignInFailed,
    UserNotFound,
)
from accounts.identity import Actor
from accounts.models import Role, User
from accounts.throttle import SignInThrottle
from core.clock import Clock
from core.db import Database
from core.settings import Settings

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Refusals that depend on what is stored (another account has it): the API answers 409.
ROLE_MISFIT = "does not fit the account's role"
STATE_CONFLICTS = frozenset(
    {"already belongs to another account", "is not a known agency", "is already taken", ROLE_MISFIT}
)
Errors = dict[str, tuple[str, dict[str, object]]]


# Every panel request loads its user (a deactivated account is out at once);
# a short cache spares the database that read on busy panels.  Changes made
# through this service clear it at once; another panel process sees a change
# within this many seconds.
USER_CACHE_SECONDS = 2.0
# Failed sign-ins under names no account has, counted as for a real account so
# that the lockout tells nobody which names exist; at most this many names are
# remembered (the oldest go first), in this process.
# failed and refused sign-ins with the client address: fail2ban reads these
# (core.logs.security_file; monitoring/fail2ban/filter.d/hotline-panel.conf)
security = logging.getLogger("hotline.security")


class AccountService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        throttle: SignInThrottle | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # shared failure counts per address and name; None where nobody signs in
        # (the command line, set-up scripts): authenticate() then refuses
        self.throttle = throttle
        self._cache: dict[int, tuple[float, User]] = {}

    def _forget(self, user_id: int) -> None:
        self._cache.pop(user_id, None)

    # -- checks ---------------------------------------------------------
    def _check(self, data: dict[str, object], *, creating: bool) -> Errors:
        errors: Errors = {}
        if creating or "username" in data:
            username = str(data.get("username") or "").strip().lower()
            if not USERNAME.match(username):
                errors["username"] = (
                    "must be 2 to 64 letters, digits, dots, dashes or underscores",
                    {},
                )
        if creating or "display_name" in data:
            name = str(data.get("display_name") or "").strip()
            if not name:
                errors["display_name"] = ("is required", {})
            elif len(name) > 200:
                errors["display_name"] = ("is too long (at most {max} characters)", {"max": 200})
        role = data.get("role")
        if creating or "role" in data:
            if role not in {r.value for r in Role}:
                errors["role"] = ("is not one of the allowed values", {})
        ext = data.get("extension")
        if role == Role.AGENT:
            known = {a.extension for a in self.settings.agents}
            if not ext:
                errors["extension"] = ("is required for an agent", {})
            elif ext not in known:
                # the refused value is named: a typo is seen, not silently lost
                errors["extension"] = (
                    "“{value}” is not an agent extension in the configuration",
                    {"value": str(ext)[:20]},
                )
        elif role in (Role.SUPERVISOR, Role.ADMIN) and ext:
            # a supervisor's desk phone: the one they listen to agents' calls on
            desks = {p.extension for p in self.settings.supervision.phones}
            if ext not in desks:
                errors["extension"] = (
                    "“{value}” is not a supervisor's phone in the configuration",
                    {"value": str(ext)[:20]},
                )
        elif ext and (creating or "extension" in data):
            errors["extension"] = (
                "“{value}” refused: only agents and supervisors have an extension",
                {"value": str(ext)[:20]},
            )
        if role == Role.AGENCY and not data.get("agency_id"):
            errors["agency_id"] = ("is required for an agency officer", {})
        if "language" in data and data["language"] not in ("vi", "en"):
            errors["language"] = ("is not one of the allowed values", {})
        if creating or "password" in data:
            problem = passwords.password_problem(str(data.get("password") or ""))
            if problem:
                errors["password"] = problem
        return errors

    # -- accounts -------------------------------------------------------
    async def create_user(self, actor: Actor | None, data: dict[str, object]) -> User:
        """Create an account (``actor`` None: the command line's first admin).

        ``data``: username, display_name, role, password, and extension for an
        agent, agency_id for an agency officer, optional language.
        """
        if actor is not None and actor.role is not Role.ADMIN:
            raise PermissionError("only admins create accounts")
        errors = self._check(data, creating=True)
        if errors:
            raise AccountInvalid(errors)
        role = Role(str(data["role"]))
        now = self.clock.now()
        user = User(
            username=str(data["username"]).strip().lower(),
            display_name=str(data["display_name"]).strip(),
            role=role.value,
            password_hash=await passwords.hash_async(str(data["password"])),
            extension=str(data["extension"]) if _has_phone(role, data) else None,
            agency_id=int(data["agency_id"]) if role is Role.AGENCY else None,  # type: ignore[call-overload]
            language=str(data.get("language") or self.settings.panel.language),
            active=True,
            failed_logins=0,
            created_at=now,
            password_changed_at=now,
        )
        try:
            async with self.db.session() as s:
                s.add(user)
        except IntegrityError as e:
            raise AccountInvalid(self._conflict(str(e.orig))) from None
        return user

    @staticmethod
    def _conflict(message: str) -> Errors:
        """What a unique or foreign key refused (all in :data:`STATE_CONFLICTS`)."""
        m = message.lower()
        if "extension" in m:
            return {"extension": ("already belongs to another account", {})}
        if "agency" in m or "foreign key" in m:
            return {"agency_id": ("is not a known agency", {})}
        return {"username": ("is already taken", {})}

    async def update_user(self, actor: Actor, user_id: int, data: dict[str, object]) -> User:
        """Change an account's name, role, extension, agency, language or active flag."""
        if actor.role is not Role.ADMIN and not (
            actor.id == user_id and set(data) <= {"language", "display_name"}
        ):
            raise PermissionError("only admins change other accounts")
        self._forget(user_id)
        async with self.db.session() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound(user_id)
            merged = {"role": user.role, "agency_id": user.agency_id, **data}
            if "extension" not in data and str(merged["role"]) == user.role:
                # kept while the role stays; an agent made supervisor loses it (not refused)
                merged["extension"] = user.extension
            errors = self._check(merged, creating=False)
            errors = {
                k: v for k, v in errors.items() if k in data or k in ("extension", "agency_id")
            }
            if "role" not in data:
                # the stored role, not this request, asks for (or refuses) these
                errors = {
                    k: (ROLE_MISFIT, {}) if k in ("extension", "agency_id") else v
                    for k, v in errors.items()
                }
            if errors:
                raise AccountInvalid(errors)
            for key in ("display_name", "role", "language", "active"):
                if key in data:
                    value = data[key]
                    setattr(user, key, value.strip() if isinstance(value, str) else value)
            role = Role(user.role)
            user.extension = str(merged["extension"]) if _has_phone(role, merged) else None
            user.agency_id = int(merged["agency_id"]) if role is Role.AGENCY else None  # type: ignore[call-overload]
            try:
                await s.flush()
            except IntegrityError as e:
                raise AccountInvalid(self._conflict(str(e.orig))) from None
        self._forget(user_id)
        return user

    async def set_password(
        self, actor: Actor | None, user_id: int, new: str, *, current: str | None = None
    ) -> None:
        """Set a password: an admin for anyone, a user for themself (with the current one)."""
        problem = passwords.password_problem(new)
        if problem:
            raise AccountInvalid({"password": problem})
        async with self.db.session() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound(user_id)
            stored = user.password_hash
        if actor is not None and actor.role is not Role.ADMIN:
            if actor.id != user_id:
                raise PermissionError("only admins set other people's passwords")
            if not await passwords.verify_async(stored, current or ""):
                raise AccountInvalid({"current_password": ("is not correct", {})})
        hashed = await passwords.hash_async(new)
        self._forget(user_id)
        async with self.db.session() as s:
            await s.execute(
                update(User)
                .where(User.id == user_id)
                .values(
                    password_hash=hashed,
                    password_changed_at=self.clock.now(),
                    failed_logins=0,
                    locked_until=None,
                )
            )

    async def unlock(self, actor: Actor, user_id: int) -> None:
        if actor.role is not Role.ADMIN:
            raise PermissionError("only admins unlock accounts")
        self._forget(user_id)
        async with self.db.session() as s:
            await s.execute(
                update(User).where(User.id == user_id).values(failed_logins=0, locked_until=None)
            )

    # -- sign-in --------------------------------------------------------
    async def authenticate(
        self,
        username: str,
        password: str,
        address: str | None = None,
        otp: str | None = None,
    ) -> User:
        """The user for these credentials; counts failures and locks the account.

        After ``panel.lockout_attempts`` failures within
        ``panel.lockout_minutes`` the account is locked for that long; while
        locked even the right password is refused.  With a throttle, failures
        are also counted per client ``address`` and an address is refused
        (:class:`AddressBlocked`) before it could lock anyone out
        (accounts/throttle.py).  A name no account has is counted and locked
        the same way, and every attempt costs the same hashing time, so
        neither the answer nor its delay says whether a name exists.  A
        deactivated account is told so only once the password matched.

        An account with a second factor needs a current code as well
        (``otp``): without one, :class:`SecondFactorRequired` (the panel
        then asks for it and calls :meth:`second_step`); a wrong or reused
        code is a failed sign-in (:class:`CodeRejected`), counted as above.
        """
        name = (username or "").strip().lower()[:64]
        now = self.clock.now()
        await self._address_check(name, address, now)
        async with self.db.session() as s:
            user = (await s.execute(select(User).where(User.username == name))).scalar_one_or_none()
            stored = user.password_hash if user else None
        throttle = self._throttle()
        if user is not None:
            locked = user.locked_until
        else:
            locked = await throttle.name_locked(name, now)
        # hashed whatever happens next: a locked or unknown name takes as long
        ok = await passwords.verify_async(stored, password or "")
        if not ok or (locked and locked > now):
            security.warning("sign-in failed for %r from %s", name, address or "unknown")
        if locked and locked > now:
            raise AccountLocked(name, locked)
        if user is None or not ok:
            await self._failed(user, name, address, now, SignInFailed(name))
        assert user is not None
        if not user.active:
            raise AccountDisabled(name)
        if user.totp_on:
            if otp is None:
                raise SecondFactorRequired(name, user.id)
            await self._check_code(user, name, otp, address, now)
        return await self._signed_in(user, name, now, password)

    async def second_step(self, user_id: int, code: str, address: str | None = None) -> User:
        """Finish a sign-in whose password was right (:class:`SecondFactorRequired`).

        The caller keeps which account is half signed in, server-side and
        briefly; a wrong or reused code counts as a failed sign-in.
        """
        now = self.clock.now()
        async with self.db.session() as s:
            user = await s.get(User, user_id)
        if user is None:
            raise UserNotFound(user_id)
        name = user.username
        await self._address_check(name, address, now)
        if user.locked_until and user.locked_until > now:
            raise AccountLocked(name, user.locked_until)
        if not user.active:
            raise AccountDisabled(name)
        if user.totp_on:
            await self._check_code(user, name, code, address, now)
        return await self._signed_in(user, name, now, None)

    async def _address_check(self, name: str, address: str | None, now: datetime) -> None:
        throttle = self.throttle
        if throttle is not None and address:
            blocked = await throttle.address_blocked(address, now)
            if blocked is not None:
                security.warning("sign-in refused (address blocked) for %r from %s", name, address)
                raise AddressBlocked(address, blocked)

    async def _check_code(
        self, user: User, name: str, code: str, address: str | None, now: datetime
    ) -> None:
        """Accept ``code`` once (its step is recorded) or count a failed sign-in."""
        step = totp.matching_step(str(user.totp_secret), code, now)
        if step is not None:
            # one statement: of two requests with the same code, one wins
            async with self.db.session() as s:
                result = await s.execute(
                    update(User)
                    .where(User.id == user.id)
                    .where(or_(User.totp_last_step.is_(None), User.totp_last_step < step))
                    .values(totp_last_step=step)
                )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return
        security.warning("sign-in code refused for %r from %s", name, address or "unknown")
        await self._failed(user, name, address, now, CodeRejected(name))

    async def _failed(
        self,
        user: User | None,
        name: str,
        address: str | None,
        now: datetime,
        error: SignInFailed,
    ) -> NoReturn:
        """Count a failed sign-in; raise ``error``, or :class:`AccountLocked` at the limit."""
        p = self.settings.panel
        throttle = self._throttle()
        failures = await throttle.failed(name, address, now)
        if failures < p.lockout_attempts:
            if user is not None:
                async with self.db.session() as s:
                    await s.execute(
                        update(User).where(User.id == user.id).values(failed_logins=failures)
                    )
            raise error
        until = now + timedelta(minutes=p.lockout_minutes)
        await throttle.lock_name(name, until)
        if user is not None:
            async with self.db.session() as s:
                await s.execute(
                    update(User)
                    .where(User.id == user.id)
                    .values(locked_until=until, failed_logins=0)
                )
        raise AccountLocked(name, until)

    def _throttle(self) -> SignInThrottle:
        """The shared failure counts: signing in is not offered without them."""
        if self.throttle is None:
            raise RuntimeError("sign-in needs the failure counts in Redis (a SignInThrottle)")
        return self.throttle

    async def _signed_in(self, user: User, name: str, now: datetime, password: str | None) -> User:
        """Clear the failure counts and note the sign-in (``password``: to rehash)."""
        if self.throttle is not None:
            await self.throttle.succeeded(name)
        values: dict[str, object] = {
            "failed_logins": 0,
            "locked_until": None,
            "last_login_at": now,
        }
        if password is not None and passwords.needs_rehash(user.password_hash):
            values["password_hash"] = await passwords.hash_async(password)
        async with self.db.session() as s:
            await s.execute(update(User).where(User.id == user.id).values(**values))
        user.last_login_at = now
        return user

    # -- second factor --------------------------------------------------
    def totp_allowed(self, user: User | Actor) -> bool:
        """Whether this account's role may (or, if required, must) use a second factor."""
        role = user.role.value if isinstance(user, Actor) else user.role
        return role in self.settings.panel.totp_roles

    async def begin_totp(self, actor: Actor) -> str:
        """A new secret for the actor's own second factor; off until confirmed.

        Shown to the user once (with its URI) to put in their app; starting
        again replaces a secret not yet confirmed.
        """
        if actor.id is None or not self.totp_allowed(actor):
            raise PermissionError("this role has no second factor")
        user = await self._fresh(actor.id)
        if user.totp_on:
            raise AccountInvalid({"code": ("the second factor is already on", {})})
        secret = totp.new_secret()
        self._forget(actor.id)
        async with self.db.session() as s:
            await s.execute(
                update(User)
                .where(User.id == actor.id)
                .values(totp_secret=secret, totp_enabled_at=None, totp_last_step=None)
            )
        return secret

    async def pending_totp(self, actor: Actor) -> str | None:
        """The secret begun and not yet confirmed (None once on, or never begun)."""
        if actor.id is None:
            return None
        user = await self._fresh(actor.id)
        return None if user.totp_on else user.totp_secret

    async def confirm_totp(self, actor: Actor, code: str) -> None:
        """Switch the second factor on once a current code from the new secret is typed."""
        if actor.id is None or not self.totp_allowed(actor):
            raise PermissionError("this role has no second factor")
        user = await self._fresh(actor.id)
        if user.totp_on or not user.totp_secret:
            raise AccountInvalid({"code": ("start the set-up again", {})})
        now = self.clock.now()
        step = totp.matching_step(user.totp_secret, code, now)
        if step is None:
            raise AccountInvalid({"code": ("is not the current code of the app", {})})
        self._forget(actor.id)
        async with self.db.session() as s:
            await s.execute(
                update(User)
                .where(User.id == actor.id)
                .values(totp_enabled_at=now, totp_last_step=step)
            )
        security.info("second factor on for %r", user.username)

    async def reset_totp(self, actor: Actor, user_id: int) -> None:
        """An admin turns a user's second factor off (a lost phone); they enrol again."""
        if actor.role is not Role.ADMIN:
            raise PermissionError("only admins reset a second factor")
        self._forget(user_id)
        async with self.db.session() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound(user_id)
            user.totp_secret = None
            user.totp_enabled_at = None
            user.totp_last_step = None
            name = user.username
        security.warning(
            "second factor of %r reset by admin %r (id %s)", name, actor.name, actor.id
        )

    async def _fresh(self, user_id: int) -> User:
        async with self.db.session() as s:
            user = await s.get(User, user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    # -- reading --------------------------------------------------------
    async def get(self, user_id: int) -> User:
        """The account (read-only: a shared, briefly cached copy)."""
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self.db.session() as s:
            user = await s.get(User, user_id)
        if user is None:
            self._forget(user_id)
            raise UserNotFound(user_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[user_id] = (time.monotonic() + USER_CACHE_SECONDS, user)
        return user

    async def by_extension(self, extension: str) -> User | None:
        async with self.db.session() as s:
            return (
                await s.execute(select(User).where(User.extension == extension))
            ).scalar_one_or_none()

    async def list_users(self, role: Role | None = None) -> list[User]:
        async with self.db.session() as s:
            q = select(User).order_by(User.role, User.username)
            if role is not None:
                q = q.where(User.role == role.value)
            return list((await s.execute(q)).scalars())


def _has_phone(role: Role, data: dict[str, object]) -> bool:
    """Agents always have an extension; supervisors and admins may have a desk phone."""
    return role is Role.AGENT or (
        role in (Role.SUPERVISOR, Role.ADMIN) and bool(data.get("extension"))
    )
