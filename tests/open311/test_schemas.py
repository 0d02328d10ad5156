"""The pure parts of Open311 input: W3C date-times and the POST form's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from multidict import MultiDict

from open311.formats import to_xml
from open311.schemas import Open311Error, parse_form, parse_w3c

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("raw", "end", "expected"),
    [
        ("2026-12-01T08:00:00+07:00", False, datetime(2026, 12, 1, 1, tzinfo=UTC)),
        ("2026-12-01T01:00:00Z", False, datetime(2026, 12, 1, 1, tzinfo=UTC)),
        ("2026-12-01T01:00Z", False, datetime(2026, 12, 1, 1, tzinfo=UTC)),
        ("2026-12-01T01:00:00.250Z", False, datetime(2026, 12, 1, 1, 0, 0, 250000, tzinfo=UTC)),
        ("2026-12-01T08:00:00 07:00", False, datetime(2026, 12, 1, 1, tzinfo=UTC)),
        ("2026-12-01", False, datetime(2026, 12, 1, tzinfo=HCM)),
        ("2026-12", False, datetime(2026, 12, 1, tzinfo=HCM)),
        ("2026", False, datetime(2026, 1, 1, tzinfo=HCM)),
        ("2028-02", True, datetime(2028, 2, 29, 23, 59, 59, 999999, tzinfo=HCM)),
        ("2026-12", True, datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=HCM)),
        ("2026", True, datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=HCM)),
    ],
)
def test_w3c_forms(raw: str, end: bool, expected: datetime):
    assert parse_w3c("start_date", raw, HCM, end=end) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "today",
        "2026-12-01T08:00:00",
        "2026-12-01 08:00",
        "2026-02-30",
        "2026-12-01T25:00Z",
        "12/01/2026",
        "2026-12-01T08:00:00+7",
        "'; DROP TABLE tickets; --",
    ],
)
def test_w3c_refusals_name_the_field(raw: str):
    with pytest.raises(Open311Error) as e:
        parse_w3c("end_date", raw, HCM)
    assert e.value.status == 400 and e.value.description.startswith("end_date:")


def test_offsets_other_than_the_citys_are_kept():
    got = parse_w3c("start_date", "2026-12-01T08:00:00-05:00", HCM)
    assert got.utcoffset() == timedelta(hours=-5) and got.tzinfo == timezone(timedelta(hours=-5))


def test_the_form_keeps_text_literally_and_joins_the_name_family_first():
    form = MultiDict(
        service_code="trees",
        description="  Cây đổ <script>alert(1)</script> & 'quotes'  ",
        first_name="Thị Hoa",
        last_name="Lê",
    )
    new = parse_form(form, {"trees": object()}, 4000)
    assert new.description == "  Cây đổ <script>alert(1)</script> & 'quotes'  ".strip()
    assert new.name == "Lê Thị Hoa"
    assert new.lat is None and new.media_url is None


def test_xml_escapes_what_it_holds():
    body = to_xml("service_requests", [{"description": "<b>&</b>", "x": None, "ok": True}])
    assert b"&lt;b&gt;&amp;&lt;/b&gt;" in body
    assert b"<x />" in body and b"<ok>true</ok>" in body
