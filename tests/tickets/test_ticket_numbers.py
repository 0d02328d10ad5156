"""Ticket numbers: the Damm check digit, tolerant parsing, grouping, the words read aloud."""

from __future__ import annotations

import random

import pytest
from stdnum import damm

from tickets.exceptions import InvalidCode
from tickets.numbers import (
    LENGTH,
    format_number,
    is_valid,
    new_number,
    number_like,
    parse_number,
    spoken,
)


def _samples(n: int) -> list[str]:
    # Seeded: the same numbers on every run, plus the edges of the range.
    rng = random.Random(20261206)
    bodies = [str(rng.randrange(10**8, 10**9)) for _ in range(n)]
    bodies += ["100000000", "999999999", "123456789", "111111111"]
    return [b + damm.calc_check_digit(b) for b in bodies]


def test_new_numbers_are_valid_varied_and_never_start_with_zero():
    numbers = {new_number() for _ in range(2000)}
    assert len(numbers) == 2000  # 9 * 10**8 possibilities: a repeat would mean no randomness
    for number in numbers:
        assert len(number) == LENGTH and number.isdigit() and number[0] != "0"
        assert is_valid(number) and parse_number(number) == number


def test_every_single_digit_error_is_caught():
    for number in _samples(500):
        for i, right in enumerate(number):
            for wrong in "0123456789":
                if wrong != right:
                    typo = number[:i] + wrong + number[i + 1 :]
                    assert not is_valid(typo), (number, typo)


def test_every_swap_of_neighbours_is_caught():
    for number in _samples(500):
        for i in range(LENGTH - 1):
            if number[i] != number[i + 1]:
                swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
                assert not is_valid(swapped), (number, swapped)


def test_grouped_for_reading_and_parsed_back_with_or_without_separators():
    assert format_number("1234567890") == "123 456 789 0"
    number = _samples(1)[0]
    shown = format_number(number)
    for written in (
        number,
        shown,
        shown.replace(" ", "-"),
        f"  {shown.replace(' ', '  ')} ",
        shown.replace(" ", "."),
        shown.replace(" ", "\u2013"),
    ):
        assert parse_number(written) == number, written
        assert number_like(written) == number, written


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("123 456 789", "length"),
        ("123 456 789 01", "length"),
        ("123 456 789 a", "symbol"),
        ("١٢٣٤٥٦٧٨٩٠", "symbol"),  # Arabic-Indic digits: isdigit(), but not ours
        ("012 345 678 9", "symbol"),
        ("", "symbol"),
    ],
)
def test_what_is_not_a_number_is_refused(text, reason):
    with pytest.raises(InvalidCode) as e:
        parse_number(text)
    assert e.value.reason == reason


def test_a_wrong_check_digit_is_refused():
    number = _samples(1)[0]
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(InvalidCode) as e:
        parse_number(wrong)
    assert e.value.reason == "check"
    assert number_like(wrong) == wrong  # shaped like a number: refused, not searched as text


def test_phone_numbers_and_words_are_not_numbers():
    for text in ("0901234567", "090 123 4567", "84901234567", "K7M-4QX8", "123456789", "cây đổ"):
        assert number_like(text) is None, text


def test_spoken_reads_each_group_digit_by_digit_in_vietnamese():
    assert spoken("1234567890") == ["một hai ba", "bốn năm sáu", "bảy tám chín", "không"]
    assert spoken("505 050 505 5") == ["năm không năm", "không năm không", "năm không năm", "năm"]
    words = spoken(new_number())
    assert len(words) == 4 and [len(g.split()) for g in words] == [3, 3, 3, 1]
    for bad in ("123", "12345678901", "123 456 789 x"):
        with pytest.raises(ValueError):
            spoken(bad)


def test_a_number_already_shown_is_never_grouped_twice():
    for number in _samples(5):
        shown = format_number(number)
        assert format_number(shown) == shown
        assert format_number(shown.replace(" ", "-")) == shown
