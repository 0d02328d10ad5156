"""The second factor: TOTP codes (RFC 6238) as authenticator apps make them.

Thirty-second steps, six digits, HMAC-SHA-1: what every authenticator app
assumes when it reads an ``otpauth://`` URI.  A code is accepted in its own
step or the one before or after (a phone's clock a little off, a code typed
as it turned over), and only once: the caller keeps the step of the last
code accepted and refuses any step not after it (``matching_step``).
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno

DIGITS = 6
STEP_SECONDS = 30
# steps either side of now still accepted
DRIFT_STEPS = 1
ISSUER = "Hotline"


def new_secret() -> str:
    """A fresh random secret, base32 (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app reads (QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an SVG data URI for an ``<img>`` (no image libraries)."""
    return str(segno.make(text, error="m").svg_data_uri(scale=4, border=2))


def clean(code: str | None) -> str:
    """The digits of a typed code (apps show "123 456")."""
    return "".join((code or "").split())


def matching_step(secret: str, code: str | None, now: datetime) -> int | None:
    """The time step whose code ``code`` is (within the drift), or None."""
    typed = clean(code)
    if len(typed) != DIGITS or not typed.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    step = totp.timecode(now)
    found = None
    # every step is compared, so the time taken says nothing about which matched
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step + offset), typed):
            found = step + offset
    return found


def code_at(secret: str, when: datetime) -> str:
    """The code for ``when`` (what the user's app shows then)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(when)
