"""The product's password hashes: Argon2id at RFC 9106's low-memory profile.

The rest of the suite hashes at argon2-cffi's cheapest parameters (tests/conftest.py);
this test puts the product's hasher back and checks what it writes and accepts.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type, extract_parameters, profiles

from accounts import passwords

PASSWORD = "correct horse battery"


def test_hashes_are_argon2id_at_64_mib_3_passes_4_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher.from_parameters(passwords.PROFILE))
    stored = passwords.hash_password(PASSWORD)
    p = extract_parameters(stored)
    assert (p.type, p.memory_cost, p.time_cost, p.parallelism) == (Type.ID, 65536, 3, 4)
    assert passwords.verify(stored, PASSWORD)
    assert not passwords.verify(stored, PASSWORD + "!")
    assert not passwords.verify(None, PASSWORD)
    assert not passwords.verify("not a hash", PASSWORD)
    assert not passwords.needs_rehash(stored)
    # a hash at other parameters (the tests' own) is still read, and is due a rehash
    cheap = PasswordHasher.from_parameters(profiles.CHEAPEST).hash(PASSWORD)
    assert passwords.verify(cheap, PASSWORD) and passwords.needs_rehash(cheap)


def test_the_suite_hashes_at_the_cheapest_parameters() -> None:
    """The session fixture is in force here (what makes the suite's sign-ins quick)."""
    p = extract_parameters(passwords.hash_password(PASSWORD))
    assert (p.memory_cost, p.time_cost) == (profiles.CHEAPEST.memory_cost, 1)
