"""The composition root's wiring: what Asterisk lets through is what is heard."""

from __future__ import annotations

import re

from callcenter.events import RESPONSE_EVENTS
from dialplan.render import render
from hotline.app import AMI_EVENTS, Application
from tests.helpers import settings_in


async def test_the_manager_filter_lets_through_exactly_what_is_subscribed(tmp_path) -> None:
    settings = settings_in(tmp_path)
    app = Application(settings)
    try:
        subscribed = app.ami.subscribed()
    finally:
        await app.bus.close()
        await app.db.close()
    manager_conf = render(settings, AMI_EVENTS)["manager.conf"]
    filtered = {e.lower() for e in re.findall(r"^eventfilter\(action\(include\),name\((\w+)\)\)=$",
                                               manager_conf, re.M)}  # fmt: skip
    responses = {e.lower() for e in RESPONSE_EVENTS}
    assert subscribed - filtered == set(), "subscribed but filtered out by manager.conf"
    assert filtered - responses - subscribed == set(), "let through but nobody listens"
    assert responses <= filtered, "the answers to our actions must come through"


async def test_each_lane_hears_its_own_events(tmp_path) -> None:
    app = Application(settings_in(tmp_path))
    try:
        lanes = {name: set(lane.handlers) for name, lane in app.ami._lanes.items()}
    finally:
        await app.bus.close()
        await app.db.close()
    assert set(lanes) == {"main", "live", "pop", "handover"}
    # the recording's hand-over after a transfer waits on AMI actions: a lane of its own
    assert {"agentconnect", "attendedtransfer"} <= lanes["handover"]
    # the pop needs its own join times: the record's are written on another lane
    assert {"agentcalled", "queuecallerjoin", "agentconnect", "agentcomplete"} <= lanes["pop"]
    assert "agentcalled" not in lanes["main"]
    assert {"queuememberstatus", "queuecallerjoin"} <= lanes["live"]
