"""The FastAGI routes the dialplan names, in one place (a test checks the dialplan against it)."""

from __future__ import annotations

from agi.ivr import IVR
from agi.overflow import OverflowMenu
from agi.protocol import Handler
from agi.result_call import ResultCallFlow
from agi.survey import Survey


def routes(
    ivr: IVR,
    overflow: OverflowMenu | None = None,
    survey: Survey | None = None,
    result_call: ResultCallFlow | None = None,
) -> dict[str, Handler]:
    """The routes; ``overflow``, ``survey`` and ``result_call`` are left out only by tests
    of the IVR alone."""
    out: dict[str, Handler] = {"ivr": ivr.handle}
    if overflow is not None:
        out["overflow"] = overflow.handle
    if survey is not None:
        out["survey"] = survey.handle
    if result_call is not None:
        out["result_call"] = result_call.handle
    return out
