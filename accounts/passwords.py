"""Password hashing with Argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile).

Hashing costs tens of milliseconds of CPU on purpose; the async callers run it
in a thread so the event loop keeps serving calls and screen-pops.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# 64 MiB, 3 passes, 4 lanes: argon2-cffi's defaults, named
PROFILE = profiles.RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PROFILE)
# Verified against when the user does not exist, so that a wrong user name
# costs the same time as a wrong password.
_DUMMY = _hasher.hash("not a real password")

MIN_LENGTH = 10
MAX_LENGTH = 256


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


async def hash_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_async(stored: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify, stored, password)


def password_problem(password: str) -> tuple[str, dict[str, object]] | None:
    """Why a new password is refused, as (msgid, params), or None."""
    if len(password) < MIN_LENGTH:
        return ("is too short (at least {min} characters)", {"min": MIN_LENGTH})
    if len(password) > MAX_LENGTH:
        return ("is too long (at most {max} characters)", {"max": MAX_LENGTH})
    if password.strip() == "" or len(set(password)) < 4:
        return ("is too easy to guess", {})
    return None
