"""``hotline status`` and the trunk's registration: read from what the real
Asterisk printed (``pjsip show registrations``, kept in tests/fixtures/pjsip/),
laid out for a person, and a trunk that should register and does not makes
the status unhealthy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotline.status import healthy, render, trunk_registration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "pjsip"
SERVER = "sip:127.0.0.2:15460"


def shown(name: str) -> str:
    return (FIXTURES / f"show_registrations_{name}.txt").read_text()


def test_the_registration_is_read_from_asterisks_table():
    assert trunk_registration(shown("registered"), "carrier") == {
        "server": SERVER,
        "state": "Registered",
    }
    assert trunk_registration(shown("rejected"), "carrier")["state"] == "Rejected"
    # coloured, as a terminal gets it
    coloured = shown("rejected").replace("Rejected", "\x1b[1;31mRejected\x1b[0m")
    assert trunk_registration(coloured, "carrier")["state"] == "Rejected"
    # another trunk's line is not this one's; none at all is said
    assert trunk_registration(shown("registered"), "carrier2")["state"] == "missing"
    assert trunk_registration("No objects found.\n", "carrier") == {
        "server": "",
        "state": "missing",
    }


def ready(trunk: dict[str, Any] | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "asterisk": {"running": True, "version": "Asterisk 22.10.1"},
        "application": {"pid": 42, "readiness": {"status": "ready", "checks": {}}},
    }
    if trunk is not None:
        status["trunk"] = trunk
    return status


@pytest.mark.parametrize(
    ("registration", "line", "ok"),
    [
        (None, "trunk carrier: recognised by address (no registration)", True),
        ("registered", f"trunk carrier: registered at {SERVER}", True),
        (
            "rejected",
            f"trunk carrier: FAILING: Rejected at {SERVER} (check trunk.username and its password)",
            False,
        ),
    ],
)
def test_the_trunk_line_and_health(registration, line, ok):
    reg = trunk_registration(shown(registration), "carrier") if registration else None
    status = ready({"name": "carrier", "registration": reg})
    assert render(status).splitlines()[1] == line
    assert healthy(status) is ok


def test_a_registration_asterisk_does_not_have_is_failing():
    status = ready({"name": "carrier", "registration": {"server": "", "state": "missing"}})
    assert "FAILING: no registration in Asterisk" in render(status)
    assert not healthy(status)
    # Asterisk stopped: no trunk line at all, as before
    assert "trunk" not in render(ready(None))
