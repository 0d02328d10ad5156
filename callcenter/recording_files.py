"""Where recordings live and how their files are named.

Asterisk's MixMonitor writes them, started by app_queue when an agent
answers: ``<recordings_dir>/<yyyy>/<mm>/<dd>/<uniqueid>`` is the *base* (the
date is the call's local date in the hotline's time zone), and three files
hang off it: ``<base>.wav`` both sides mixed, ``<base>-in.wav`` what the
caller said, ``<base>-out.wav`` what the agent said.  The dialplan template
and the call records both take the names from here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

FORMAT = "wav"
CALLER_SUFFIX = "-in"
AGENT_SUFFIX = "-out"
DATE_PATH = "%Y/%m/%d"


def base_for(recordings_dir: Path, tz: ZoneInfo, started: datetime, uniqueid: str) -> Path:
    """The recording base of a call that started at ``started``."""
    return recordings_dir / started.astimezone(tz).strftime(DATE_PATH) / uniqueid


def side_files(base: str | None) -> tuple[str | None, str | None]:
    """The caller-side and agent-side files for a recording base."""
    if not base:
        return None, None
    return f"{base}{CALLER_SUFFIX}.{FORMAT}", f"{base}{AGENT_SUFFIX}.{FORMAT}"


def mixed_file(base: str) -> str:
    return f"{base}.{FORMAT}"
