"""``hotline status``: what runs and how it is, for a person or (``--json``) a script.

The application answers for itself through ``/readyz`` (the same checks a
load balancer sees); this module fetches it from the local panel and lays it
out: Asterisk, the trunk's registration (read from Asterisk, when the trunk
registers), the application and each dependency, then per queue of the shift
on duty the members by state and the callers waiting.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

from core.settings import Settings

COLUMNS = ("members", "free", "ringing", "talking", "wrapup", "paused", "offline", "waiting")


def readyz_url(settings: Settings) -> str:
    host = settings.panel.host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: ask on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.panel.port}/readyz"


def fetch_readiness(settings: Settings, timeout: float = 5) -> dict[str, Any]:
    """The application's /readyz answer (ready or not), or ``{"error": ...}``."""
    try:
        with urllib.request.urlopen(readyz_url(settings), timeout=timeout) as r:  # noqa: S310
            return dict(json.load(r))
    except urllib.error.HTTPError as e:
        if e.code == 503:
            return dict(json.load(e))
        return {"error": f"/readyz answered {e.code}"}
    except (OSError, ValueError) as e:
        return {"error": f"the panel does not answer ({e})"}


_STATES = ("Registered", "Unregistered", "Rejected", "Stopped")


def trunk_registration(registrations: str, name: str) -> dict[str, str]:
    """The trunk's outbound registration in ``pjsip show registrations``:
    ``{"server": ..., "state": ...}``; state "missing" when Asterisk has none."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", registrations)  # Asterisk colours its output
    for line in plain.splitlines():
        m = re.match(rf"^\s*{re.escape(name)}/(\S+)\s.*?\b({'|'.join(_STATES)})\b", line)
        if m:
            return {"server": m.group(1), "state": m.group(2)}
    return {"server": "", "state": "missing"}


def _trunk_line(trunk: dict[str, Any]) -> str:
    name, reg = trunk["name"], trunk.get("registration")
    if reg is None:
        return f"trunk {name}: recognised by address (no registration)"
    state = reg["state"]
    if state == "Registered":
        return f"trunk {name}: registered at {reg['server']}"
    if state == "missing":
        return f"trunk {name}: FAILING: no registration in Asterisk (hotline reload?)"
    hint = " (check trunk.username and its password)" if state == "Rejected" else ""
    return f"trunk {name}: FAILING: {state} at {reg['server']}{hint}"


def _sms_line(sms: dict[str, Any]) -> str:
    if not sms.get("running"):
        return "SMS: FAILING: Kannel is not running (hotline start)"
    if "error" in sms:
        return f"SMS: FAILING: {sms['error']}"
    links = ", ".join(f"{x['id']} {x['status']}" for x in sms.get("smscs", [])) or "no SMSC"
    boxes = "smsbox connected" if "smsbox" in sms.get("boxes", []) else "no smsbox"
    verdict = "" if sms_online(sms) else "FAILING: "
    return f"SMS: {verdict}Kannel {sms.get('gateway', '?')}; SMSC {links}; {boxes}"


def sms_online(sms: dict[str, Any]) -> bool:
    """Kannel runs, its SMSC link is online and smsbox is connected."""
    return bool(
        sms.get("running")
        and "error" not in sms
        and any(str(x.get("status", "")).startswith("online") for x in sms.get("smscs", []))
        and "smsbox" in sms.get("boxes", [])
    )


def _detail(name: str, check: dict[str, Any]) -> str:
    if not check.get("ok"):
        return f"FAILING: {check.get('error', '?')}"
    extra = {k: v for k, v in check.items() if k not in ("ok", "ms", "required", "queues")}
    words = ", ".join(f"{k} {v}" for k, v in extra.items() if k != "shift")
    return "ok" + (f" ({words})" if words else "")


def render(status: dict[str, Any]) -> str:
    """The status as lines a person reads."""
    ast = status["asterisk"]
    app = status["application"]
    lines = [f"Asterisk: {'running ' + ast['version'] if ast['running'] else 'stopped'}"]
    if status.get("trunk"):
        lines.append(_trunk_line(status["trunk"]))
    if status.get("sms"):
        lines.append(_sms_line(status["sms"]))
    if status.get("email"):
        mail = status["email"]
        # whether the mailbox is read now is the application's "email" check below
        lines.append(f"email: {mail['address']}: IMAP {mail['imap']}; SMTP {mail['smtp']}")
    if not app["pid"]:
        lines.append("application: stopped")
        return "\n".join(lines)
    ready = app.get("readiness", {})
    if "error" in ready:
        lines.append(f"application: running (pid {app['pid']}), {ready['error']}")
        return "\n".join(lines)
    lines.append(f"application: running (pid {app['pid']}), {ready.get('status', '?')}")
    checks: dict[str, Any] = ready.get("checks", {})
    width = max((len(n) for n in checks), default=0)
    for name, check in checks.items():
        if name != "queues":
            lines.append(f"  {name:<{width}}  {_detail(name, check)}")
    q = checks.get("queues", {})
    if q.get("ok"):
        lines.append(f"shift on duty: {q['shift']}")
        queues: dict[str, dict[str, int]] = q["queues"]
        name_w = max((len(n) for n in queues), default=5)
        lines.append(
            "  " + "queue".ljust(name_w) + "".join(f"{c:>9}" for c in COLUMNS) + "  longest wait"
        )
        for name, row in queues.items():
            cells = "".join(f"{row.get(c, 0):>9}" for c in COLUMNS)
            lines.append(f"  {name.ljust(name_w)}{cells}  {row.get('longest_wait', 0)} s")
    return "\n".join(lines)


def healthy(status: dict[str, Any]) -> bool:
    app = status["application"]
    # a trunk that must register and is not takes no calls
    registration = (status.get("trunk") or {}).get("registration")
    return bool(
        status["asterisk"]["running"]
        and app["pid"]
        and app.get("readiness", {}).get("status") == "ready"
        and (registration is None or registration["state"] == "Registered")
        and ("sms" not in status or sms_online(status["sms"]))
    )
