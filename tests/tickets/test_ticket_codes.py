"""Tracking codes: readable alphabet, check symbol, tolerant parsing."""

from __future__ import annotations

import random

import pytest

from tickets.codes import (
    ALPHABET,
    LENGTH,
    code_like,
    format_code,
    is_valid,
    new_code,
    parse_code,
)
from tickets.exceptions import InvalidCode

# A few fixed valid codes (and random ones) for the exhaustive checks.
FIXED = ["K7M-4QX8", "222-2222"]


def _raw(code: str) -> str:
    return code.replace("-", "")


def _complete(body: str) -> str:
    """``body`` (6 symbols) with its check symbol, found by trying all 31."""
    [code] = [body + c for c in ALPHABET if is_valid(body + c)]
    return format_code(code)


def _samples() -> list[str]:
    # Fixed, seeded-random and edge-symbol codes: the same ids on every run.
    rng = random.Random(20261125)
    bodies = ["".join(rng.choice(ALPHABET) for _ in range(6)) for _ in range(6)]
    bodies += ["222222", "ZZZZZZ", "2Z2Z2Z"]
    return FIXED + [_complete(b) for b in bodies]


def test_alphabet_leaves_out_confusable_symbols():
    assert len(ALPHABET) == len(set(ALPHABET)) == 31
    for confusable in "0O1IL":
        assert confusable not in ALPHABET


def test_new_codes_are_formatted_valid_and_varied():
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000  # 31**6 possibilities: a repeat here would mean no randomness
    for code in codes:
        assert len(code) == LENGTH + 1 and code[3] == "-"
        assert set(_raw(code)) <= set(ALPHABET)
        assert is_valid(_raw(code))
        assert parse_code(code) == code


def test_fixed_codes_are_valid():
    for code in FIXED:
        assert parse_code(code) == code


@pytest.mark.parametrize("code", _samples())
def test_every_single_substitution_is_caught(code: str):
    raw = _raw(code)
    for i in range(LENGTH):
        for c in ALPHABET:
            if c == raw[i]:
                continue
            wrong = raw[:i] + c + raw[i + 1 :]
            assert not is_valid(wrong), (code, i, c)
            with pytest.raises(InvalidCode) as e:
                parse_code(wrong)
            assert e.value.reason == "check"


@pytest.mark.parametrize("code", _samples())
def test_every_adjacent_transposition_is_caught(code: str):
    raw = _raw(code)
    for i in range(LENGTH - 1):
        if raw[i] == raw[i + 1]:
            continue  # swapping equal symbols changes nothing
        swapped = raw[:i] + raw[i + 1] + raw[i] + raw[i + 2 :]
        assert not is_valid(swapped), (code, i)


def test_exhaustive_over_the_alphabet_for_every_pair_of_neighbours():
    # Every pair of distinct symbols at every pair of neighbouring positions:
    # whenever such a code is valid, its swapped twin is not.
    raw = _raw(FIXED[0])
    for i in range(LENGTH - 1):
        for a in ALPHABET:
            for b in ALPHABET:
                if a == b:
                    continue
                base = raw[:i] + a + b + raw[i + 2 :]
                if is_valid(base):
                    assert not is_valid(raw[:i] + b + a + raw[i + 2 :])


@pytest.mark.parametrize(
    "typed",
    ["k7m-4qx8", "K7M4QX8", " k7m 4qx8 ", "K7M - 4QX8", "k 7 m 4 q x 8", "K7M–4QX8", "k7m_4qx8\n"],
)
def test_parse_tolerates_case_spaces_and_dashes(typed: str):
    assert parse_code(typed) == "K7M-4QX8"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "length"),
        ("K7M-4QX", "length"),
        ("K7M-4QX88", "length"),
        ("K7M-4QX8-2", "length"),
        ("07M-4QX8", "symbol"),
        ("O7M-4QX8", "symbol"),
        ("17M-4QX8", "symbol"),
        ("I7M-4QX8", "symbol"),
        ("L7M-4QX8", "symbol"),
        ("l7m-4qx8", "symbol"),
        ("K7M-4QX#", "symbol"),
        ("K7M-4QXß", "symbol"),  # "ß".upper() is "SS": must not sneak in as 2 symbols
        ("K7M-4QX9", "check"),
        ("7KM-4QX8", "check"),
    ],
)
def test_parse_refuses_with_the_reason(typed: str, reason: str):
    with pytest.raises(InvalidCode) as e:
        parse_code(typed)
    assert e.value.reason == reason
    assert e.value.text == typed


def test_format_round_trip():
    for _ in range(200):
        code = new_code()
        assert format_code(_raw(code)) == code
        assert parse_code(_raw(code).lower()) == code


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("K7M-4QX9", "K7M-4QX9"),
        ("k7m 4qx9", "K7M-4QX9"),
        ("K7M4QX9", "K7M-4QX9"),
        (" k7m – 4qx9 ", "K7M-4QX9"),
        ("KMN-PQRS", "KMN-PQRS"),  # no digit, but written as a code is shown
        ("K7M-4QX8", "K7M-4QX8"),  # valid or not: the shape alone
    ],
)
def test_a_query_shaped_like_a_code_is_taken_as_one(typed: str, code: str):
    assert code_like(typed) == code


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "members",  # a seven-letter word
        "kmnpqrs",
        "anh tran",  # a name: letters only, no dash
        "Pham Van",
        "2345678",  # digits only: part of a phone number
        "234-5678",
        "090 1234",
        "K7M-4QX0",  # 0 is no code symbol
        "K7M-4QX89",
        "K7M-4QẌ",
        "nguyễn7",
    ],
)
def test_words_and_numbers_are_not_codes(typed: str):
    assert code_like(typed) is None


def test_a_code_already_shown_is_never_dashed_twice():
    for code in _samples():
        assert format_code(code) == code
        assert format_code(format_code(code)) == code
        assert format_code(_raw(code)) == code
        assert format_code(code.replace("-", " ")) == code
        assert format_code(code.replace("-", "\u2013")) == code
    for not_a_code in ("", "K7M-4QX", "K7M4QX89", "K7M-4QX0", "k7m-4qx8", "tổng đài"):
        with pytest.raises(ValueError, match="not a tracking code"):
            format_code(not_a_code)
