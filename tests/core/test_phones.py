"""core.phones: one form for a Vietnamese number, however it was written."""

import pytest

from core.phones import national_form


@pytest.mark.parametrize(
    "number, national",
    [
        ("0901234567", "0901234567"),
        ("+84901234567", "0901234567"),
        ("84901234567", "0901234567"),
        ("0084901234567", "0901234567"),
        ("+842838223344", "02838223344"),  # a landline with its area code
        ("842838223344", "02838223344"),
        # not a Vietnamese number after the country code: kept as given
        ("+8490123", "+8490123"),
        ("+840901234567", "+840901234567"),
        ("8490123456789", "8490123456789"),
        # other countries and short numbers
        ("+14155550100", "+14155550100"),
        ("113", "113"),
        ("1022", "1022"),
        ("", ""),
    ],
)
def test_national_form(number, national):
    assert national_form(number) == national


@pytest.mark.parametrize("number", ["+84901234567", "0084 90 123 4567", "0901234567"])
def test_is_idempotent(number):
    once = national_form(number.replace(" ", ""))
    assert national_form(once) == once
