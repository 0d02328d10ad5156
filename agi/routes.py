"""The FastAGI routes the dialplan names, in one place (a test checks the dialplan against it)."""

from __future__ import annotations

from agi.ivr import IVR
from agi.protocol import Handler


def routes(ivr: IVR) -> dict[str, Handler]:
    return {"ivr": ivr.handle}
