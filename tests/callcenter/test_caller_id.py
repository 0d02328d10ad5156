"""Caller IDs as carriers send them."""

import pytest

from callcenter.service import sanitize_caller


@pytest.mark.parametrize(
    "raw, number",
    [
        ("0901234567", "0901234567"),
        # Vietnamese numbers in their national form, whatever the carrier sent
        ("+84901234567", "0901234567"),
        ("84901234567", "0901234567"),
        ("+84 90 123-4567", "0901234567"),
        ("tel:+84901234567", "0901234567"),
        ("+14155550100", "+14155550100"),
        ("sip:0901234567@carrier.example", "0901234567"),
        ("anonymous", None),
        ("Anonymous", None),
        ("<unknown>", None),
        ("", None),
        (None, None),
        ("abcDEF", None),
        ("0" + "9" * 59, None),
        ("090\x00\x1b[31m1", None),
    ],
)
def test_number(raw, number):
    assert sanitize_caller(raw).number == number


def test_raw_is_kept_printable_and_short():
    c = sanitize_caller("x" * 500, "\x07Nguyễn\x1b Văn A")
    assert c.raw == "x" * 80
    assert c.name == "Nguyễn Văn A"
    assert sanitize_caller("1", "<unknown>").name is None
