"""The rules of "call the citizen" (callcenter.outbound), without a telephone: which
numbers are dialled, what a click decides, which number the citizen sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from callcenter.live import device_of_state
from callcenter.outbound import (
    STALE_AFTER,
    decide,
    dial_request,
    dialable_number,
    shown_number,
)
from tests.helpers import settings_in

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
RING = 15


@pytest.mark.parametrize(
    ("raw", "dialled"),
    [
        ("0912345678", "0912345678"),
        ("091 234 5678", "0912345678"),
        ("091.234.5678", "0912345678"),
        ("(028) 3829-1234", "02838291234"),
        ("+84 912 345 678", "0912345678"),
        ("84912345678", "0912345678"),
    ],
)
def test_numbers_the_trunk_dials(raw: str, dialled: str) -> None:
    assert dialable_number(raw) == dialled


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "113",
        "12345",
        "+1 202 555 0100",
        "09123456789012",
        "0912-abc-678",
        "+",
        "0*12345678",
    ],
)
def test_numbers_refused(raw: str | None) -> None:
    assert dialable_number(raw) is None


def open_call(ticket_id: int, started: datetime) -> SimpleNamespace:
    return SimpleNamespace(ticket_id=ticket_id, started_at=started)


def test_a_free_phone_places_the_call() -> None:
    assert decide("free", None, 7, NOW, RING) == "place"


@pytest.mark.parametrize(
    ("device", "verdict"),
    [("offline", "not_registered"), ("ringing", "busy"), ("talking", "busy")],
)
def test_a_phone_that_cannot_take_it_is_refused(device: str, verdict: str) -> None:
    assert decide(device, None, 7, NOW, RING) == verdict


def test_a_second_click_gets_the_same_call() -> None:
    # the phone rings already, or has not yet: the same call either way, never a second
    for device in ("free", "ringing", "talking"):
        assert decide(device, open_call(7, NOW - timedelta(seconds=2)), 7, NOW, RING) == "same"


def test_a_call_from_another_ticket_under_way_refuses() -> None:
    for device in ("free", "ringing", "talking", "offline"):
        call = open_call(8, NOW - timedelta(seconds=2))
        assert decide(device, call, 7, NOW, RING) == "already_calling"


def test_an_open_call_whose_report_was_lost_is_ended_once_the_phone_is_free() -> None:
    long_ago = NOW - timedelta(seconds=RING) - STALE_AFTER
    assert decide("free", open_call(8, long_ago), 7, NOW, RING) == "lost"
    # still talking (a long call): it is not lost
    assert decide("talking", open_call(8, long_ago), 7, NOW, RING) == "already_calling"
    # just before the limit: not yet
    almost = long_ago + timedelta(seconds=1)
    assert decide("free", open_call(8, almost), 7, NOW, RING) == "already_calling"


@pytest.mark.parametrize(
    ("word", "device"),
    [("NOT_INUSE", "free"), ("INUSE", "talking"), ("BUSY", "talking"), ("RINGING", "ringing"),
     ("RINGINUSE", "ringing"), ("ONHOLD", "talking"), ("UNAVAILABLE", "offline"),
     ("INVALID", "offline"), ("UNKNOWN", "offline"), ("", "offline"), (None, "offline"),
     ("something new", "offline")],
)  # fmt: skip
def test_device_state_words(word: str | None, device: str) -> None:
    assert device_of_state(word) == device


def test_the_number_the_citizen_sees(tmp_path) -> None:
    settings = settings_in(tmp_path)
    first, *others = settings.hotlines
    assert shown_number(settings, None) == first.number
    if others:
        assert shown_number(settings, others[0].number) == others[0].number
    assert shown_number(settings, "0000") == first.number  # no such hotline
    configured = settings.model_copy(
        update={"queues": settings.queues.model_copy(update={"outbound_caller_id": "1022"})}
    )
    assert shown_number(configured, others[0].number if others else None) == "1022"


def test_dial_requests_are_checked() -> None:
    good = {
        "uniqueid": "out-0123456789abcdef",
        "extension": "1001",
        "number": "0912345678",
        "shown": "1022",
        "ticket_code": "K7M-4QX8",
        "language": "vi",
        "call_id": 5,
    }
    assert dial_request(good) == {k: v for k, v in good.items() if k != "call_id"}
    assert dial_request({**good, "uniqueid": "cb-1-xyz"}) is None  # not one of ours
    assert dial_request({**good, "number": ""}) is None
    assert dial_request({**good, "extension": 1001}) is None
