"""API keys: what a program (an Open311 client: a city app, a partner's site) signs with.

Admins issue a key with a name (who it is for), in the panel or with
``hotline open311-key issue``.  The key is shown once, as
``<key id>.<secret>``: the key id is stored as it is (it finds the row, and
is shown in lists so an admin can tell keys apart), the secret only as its
SHA-256 digest.  The secret is 32 random bytes, so a plain digest is enough:
slow password hashes protect guessable secrets, and checking a key on every
request must stay cheap.  Comparisons are constant-time.

A key is revoked, never deleted: reports it made keep naming it.  Issuing
and revoking are written to ``api_key_events`` (who, when, from where), a
table nothing updates or deletes; ``last_used_at`` tells an admin whether a
key is still in use (written at most once a minute per key).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Base, Database, UTCDateTime

log = logging.getLogger(__name__)

KEY_ID_BYTES = 6  # 12 hex digits
SECRET_BYTES = 32
NAME_MAX = 100
# last_used_at is written at most this often per key (not on every request)
USE_RESOLUTION = timedelta(minutes=1)


class ApiKey(Base):
    """A key issued to a program; revoked, never deleted."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # the public half of the key (finds the row; shown in lists)
    key_id: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    # SHA-256 of the secret half, hex
    secret_hash: Mapped[str] = mapped_column(String(64))
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # the issuer's name at the time (the CLI has no account)
    issued_by_name: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyAction(StrEnum):
    ISSUED = "issued"
    REVOKED = "revoked"


class ApiKeyEvent(Base):
    """One issue or revocation of a key (never changed, never deleted)."""

    __tablename__ = "api_key_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(200))
    # the client address of the panel request (None from the CLI)
    address: Mapped[str | None] = mapped_column(String(64))


class ApiKeyError(Exception):
    """A refused key operation; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Issued:
    """A new key: the row, and the full key text, shown once and never again."""

    key: ApiKey
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(text: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a key as issued, or None if it cannot be one."""
    key_id, sep, secret = (text or "").strip().partition(".")
    if not sep or not key_id or not secret or len(key_id) > 24 or len(secret) > 100:
        return None
    if not key_id.isascii() or not secret.isascii():
        return None
    return key_id, secret


class ApiKeyService:
    """Issuing, revoking, listing and checking API keys."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    @staticmethod
    def _admin(actor: Actor) -> None:
        if actor.role is not Role.ADMIN:
            raise ApiKeyError("actor", "only admins issue and revoke API keys")

    async def issue(self, actor: Actor, name: str, *, address: str | None = None) -> Issued:
        """A new key for ``name``; the returned secret is the only time it is seen."""
        self._admin(actor)
        name = (name or "").strip()
        if not name:
            raise ApiKeyError("name", "required")
        if len(name) > NAME_MAX or "\x00" in name:
            raise ApiKeyError("name", f"at most {NAME_MAX} characters, no NUL")
        now = self.clock.now()
        key_id = secrets.token_hex(KEY_ID_BYTES)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        async with self.db.session() as s:
            key = ApiKey(
                key_id=key_id,
                name=name,
                secret_hash=_digest(secret),
                issued_by=actor.id,
                issued_by_name=actor.name,
                issued_at=now,
            )
            s.add(key)
            await s.flush()
            s.add(self._event(key.id, KeyAction.ISSUED, actor, address, now))
            await s.commit()
            await s.refresh(key)
        log.info("API key %s (%s) issued by %s", key_id, name, actor.name)
        return Issued(key, f"{key_id}.{secret}")

    async def revoke(self, actor: Actor, key_id: str, *, address: str | None = None) -> ApiKey:
        """Revoke the key ``key_id`` (its public half); revoking twice is refused."""
        self._admin(actor)
        now = self.clock.now()
        async with self.db.session() as s:
            key = await s.scalar(select(ApiKey).where(ApiKey.key_id == (key_id or "").strip()))
            if key is None:
                raise ApiKeyError("key_id", f"no API key {key_id!r}")
            if key.revoked_at is not None:
                raise ApiKeyError("key_id", f"API key {key_id} is already revoked")
            key.revoked_at = now
            s.add(self._event(key.id, KeyAction.REVOKED, actor, address, now))
            await s.commit()
            await s.refresh(key)
        log.info("API key %s (%s) revoked by %s", key.key_id, key.name, actor.name)
        return key

    async def list(self) -> list[ApiKey]:
        """Every key, active ones first, newest first."""
        async with self.db.session() as s:
            rows = await s.scalars(select(ApiKey).order_by(ApiKey.issued_at.desc(), ApiKey.id))
            keys = list(rows)
        return sorted(keys, key=lambda k: k.revoked_at is not None)

    async def events(self, api_key_id: int) -> list[ApiKeyEvent]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(ApiKeyEvent)
                .where(ApiKeyEvent.api_key_id == api_key_id)
                .order_by(ApiKeyEvent.id)
            )
            return list(rows)

    async def authenticate(self, text: str | None) -> ApiKey | None:
        """The active key ``text`` is, or None (unknown, wrong secret or revoked)."""
        parts = split_key(text or "")
        if parts is None:
            return None
        key_id, secret = parts
        async with self.db.session() as s:
            key = await s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
            if key is None:
                # the same work as a wrong secret: no timing tells which ids exist
                hmac.compare_digest(_digest(secret), "0" * 64)
                return None
            if not hmac.compare_digest(_digest(secret), key.secret_hash):
                return None
            if key.revoked_at is not None:
                return None
            now = self.clock.now()
            if key.last_used_at is None or now - key.last_used_at >= USE_RESOLUTION:
                await s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
                await s.commit()
                key.last_used_at = now
            return key

    @staticmethod
    def _event(
        api_key_id: int, action: KeyAction, actor: Actor, address: str | None, now: datetime
    ) -> ApiKeyEvent:
        return ApiKeyEvent(
            api_key_id=api_key_id,
            at=now,
            action=action.value,
            actor_id=actor.id,
            actor_name=actor.name,
            address=address,
        )
