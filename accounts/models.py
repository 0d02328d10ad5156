"""The users table: one row per person who signs in to the panel."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class Role(StrEnum):
    AGENT = "agent"  # takes calls, creates tickets
    SUPERVISOR = "supervisor"  # watches queues, classifies, forwards, approves, closes
    ADMIN = "admin"  # everything, plus accounts, agencies and recordings
    AGENCY = "agency"  # an agency's officer: answers forwarded tickets
    # the Inspection Committee: reads the tickets it is granted, never writes
    # (tickets.confidential)
    OVERSIGHT = "oversight"


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Stored lower-case; sign-in is case-insensitive on it.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # An agent's softphone extension (agents.extension); one account per phone.
    extension: Mapped[str | None] = mapped_column(String(16), unique=True)
    # An agency officer's agency.
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="vi")
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The second factor (accounts/totp.py): the base32 TOTP secret, set at
    # enrolment and switched on (totp_enabled_at) once a code from it was
    # typed; never shown again after that.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The time step of the last code accepted: a code is good once.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def totp_on(self) -> bool:
        return self.totp_enabled_at is not None and self.totp_secret is not None
