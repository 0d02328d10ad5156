"""Input models: each refusal names its field and carries a fixed msgid."""

from __future__ import annotations

import pytest

from tickets.exceptions import (
    AGENCY_CODE,
    BAD_CHARACTER,
    EMAIL,
    INVALID,
    MESSAGES,
    NOT_ACCEPTED,
    NOT_ALLOWED,
    PHONE,
    REQUIRED,
    TOO_LONG,
    FieldError,
    InvalidInput,
)
from tickets.models import AgencyKind, Channel, Domain
from tickets.schemas import (
    AgencyIn,
    TicketCreate,
    TicketUpdate,
    check_id,
    check_phone,
    check_text,
    validate,
)

GOOD = {
    "channel": "phone",
    "domain": "state",
    "topic": "flooding",
    "level": 2,
    "description": "Nước ngập sâu trên đường Nguyễn Hữu Cảnh",
}


def errors(model, data) -> dict[str, FieldError]:
    with pytest.raises(InvalidInput) as e:
        validate(model, data)
    for err in e.value.errors:
        assert err.message in MESSAGES, err
    return {err.field: err for err in e.value.errors}


def test_a_good_ticket_is_converted_and_stripped():
    t = validate(TicketCreate, GOOD | {"citizen_name": "  Trần Thị B  ", "level": "2"})
    assert t.channel is Channel.PHONE and t.domain is Domain.STATE and t.level == 2
    assert t.citizen_name == "Trần Thị B"
    assert t.citizen_phone is None  # a withheld number is fine
    assert t.guidance is None and t.agency_id is None


def test_missing_required_fields_are_each_named():
    errs = errors(TicketCreate, {})
    assert set(errs) == {"channel", "domain", "topic", "level", "description"}
    assert all(e.message == REQUIRED for e in errs.values())


def test_blank_required_text_is_required_and_blank_optional_text_is_none():
    errs = errors(TicketCreate, GOOD | {"description": "   \n "})
    assert errs["description"].message == REQUIRED
    t = validate(TicketCreate, GOOD | {"citizen_address": "  ", "citizen_phone": ""})
    assert t.citizen_address is None and t.citizen_phone is None


@pytest.mark.parametrize(
    ("field", "limit"),
    [("citizen_name", 200), ("citizen_address", 300), ("description", 5000), ("guidance", 5000)],
)
def test_text_limits(field: str, limit: int):
    ok = validate(TicketCreate, GOOD | {field: "ằ" * limit})  # characters, not bytes
    assert getattr(ok, field) == "ằ" * limit
    err = errors(TicketCreate, GOOD | {field: "x" * (limit + 1)})[field]
    assert err.message == TOO_LONG and err.params == {"max": limit}
    assert err.message.format(**err.params) == f"is too long (at most {limit} characters)"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("0901234567", "0901234567"),
        ("+84 90 123 4567", "0901234567"),  # a Vietnamese number in national form
        ("+1 415 555 0100", "+14155550100"),
        ("(028) 3829-6052", "02838296052"),
        ("090.123.4567", "0901234567"),
        ("1" * 20, "1" * 20),
    ],
)
def test_phone_numbers_are_normalized(typed: str, stored: str):
    assert validate(TicketCreate, GOOD | {"citizen_phone": typed}).citizen_phone == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", PHONE),
        ("090-CALL-ME", PHONE),
        ("++84901", PHONE),
        ("84+901", PHONE),
        ("٠٩٠١٢٣", PHONE),  # Arabic-Indic digits are not what a phone sends
        ("1" * 21, TOO_LONG),
    ],
)
def test_bad_phone_numbers(typed: str, message: str):
    assert errors(TicketCreate, GOOD | {"citizen_phone": typed})["citizen_phone"].message == message


@pytest.mark.parametrize("level", [0, 6, "x", 2.5, True, "", None])
def test_level_must_be_one_to_five(level):
    err = errors(TicketCreate, GOOD | {"level": level})["level"]
    assert err.message in (NOT_ALLOWED, REQUIRED)
    if level not in ("", None):
        assert err.message == NOT_ALLOWED


def test_guidance_required_for_level_1_only():
    assert errors(TicketCreate, GOOD | {"level": 1})["guidance"].message == REQUIRED
    assert errors(TicketCreate, GOOD | {"level": "1", "guidance": " "})["guidance"].message == (
        REQUIRED
    )
    ok = validate(TicketCreate, GOOD | {"level": 1, "guidance": "Nộp hồ sơ tại UBND phường"})
    assert ok.guidance == "Nộp hồ sơ tại UBND phường"


def test_enums_refuse_unknown_values():
    errs = errors(TicketCreate, GOOD | {"channel": "fax", "domain": "army"})
    assert errs["channel"].message == NOT_ALLOWED and errs["domain"].message == NOT_ALLOWED


def test_unknown_keys_are_refused_not_dropped():
    errs = errors(TicketCreate, GOOD | {"status": "closed", "version": 9})
    assert errs["status"].message == NOT_ACCEPTED and errs["version"].message == NOT_ACCEPTED


def test_literal_text_is_kept_but_nul_refused():
    text = '\'; DROP TABLE tickets; -- <script>alert(1)</script> 100% _x_ \\ "q"'
    assert validate(TicketCreate, GOOD | {"description": text}).description == text
    assert errors(TicketCreate, GOOD | {"description": "a\x00b"})["description"].message == (
        BAD_CHARACTER
    )


def test_non_text_for_text_is_invalid():
    assert errors(TicketCreate, GOOD | {"citizen_name": 12})["citizen_name"].message == INVALID


@pytest.mark.parametrize("value", ["x", "0", "-1", 1.5, str(2**31), True])
def test_agency_id_must_be_a_positive_id(value):
    assert errors(TicketCreate, GOOD | {"agency_id": value})["agency_id"].message == INVALID


def test_agency_id_from_a_form():
    assert validate(TicketCreate, GOOD | {"agency_id": " 12 "}).agency_id == 12
    assert validate(TicketCreate, GOOD | {"agency_id": ""}).agency_id is None


def test_update_changes_only_what_is_given():
    u = validate(TicketUpdate, {"citizen_name": "", "topic": "trees", "level": "3"})
    assert u.changes() == {"citizen_name": None, "topic": "trees", "level": 3}
    assert validate(TicketUpdate, {}).changes() == {}


def test_update_cannot_empty_a_required_field():
    errs = errors(TicketUpdate, {"description": "", "level": None, "channel": " ", "topic": None})
    assert set(errs) == {"description", "level", "channel", "topic"}
    assert all(e.message == REQUIRED for e in errs.values())
    assert errors(TicketUpdate, {"agency_id": 3})["agency_id"].message == NOT_ACCEPTED


AGENCY = {"kind": "ward", "code": "q1-p-ben-nghe", "name": "UBND phường Bến Nghé"}


def test_agency_in():
    a = validate(
        AgencyIn,
        AGENCY
        | {
            "code": " Q1-P-Ben-Nghe ",
            "email": "ubnd@bennghe.gov.vn",
            "phone": "028 3829 6052",
            "parent_id": "4",
            "contact_name": "",
        },
    )
    assert a.kind is AgencyKind.WARD and a.code == "q1-p-ben-nghe" and a.parent_id == 4
    assert a.phone == "02838296052" and a.contact_name is None


@pytest.mark.parametrize("code", ["a", "-abc", "so gtvt", "sở-gtvt", "so_gtvt", "so-gtvt\n-x"])
def test_agency_code_pattern(code: str):
    assert errors(AgencyIn, AGENCY | {"code": code})["code"].message == AGENCY_CODE


def test_agency_code_limits():
    assert validate(AgencyIn, AGENCY | {"code": "a" * 40}).code == "a" * 40
    assert validate(AgencyIn, AGENCY | {"code": "9-"}).code == "9-"
    err = errors(AgencyIn, AGENCY | {"code": "a" * 41})["code"]
    assert err.message == TOO_LONG and err.params == {"max": 40}


@pytest.mark.parametrize("email", ["no-at", "a@b", "a@@b.vn", "a b@c.vn", "a@b..vn"])
def test_agency_email(email: str):
    assert errors(AgencyIn, AGENCY | {"email": email})["email"].message == EMAIL


def test_agency_limits_and_required():
    errs = errors(AgencyIn, {"name": "n" * 201, "address": "a" * 301, "kind": "ministry"})
    assert errs["name"].message == TOO_LONG and errs["name"].params == {"max": 200}
    assert errs["address"].params == {"max": 300}
    assert errs["code"].message == REQUIRED and errs["kind"].message == NOT_ALLOWED


def test_single_argument_checks():
    assert check_text("note", "  ok ", required=True) == "ok"
    assert check_text("note", "", required=False) is None
    with pytest.raises(InvalidInput) as e:
        check_text("result", "x" * 5001, required=True)
    assert e.value.errors == [FieldError("result", TOO_LONG, {"max": 5000})]
    with pytest.raises(InvalidInput) as e:
        check_text("reason", None, required=True)
    assert e.value.errors == [FieldError("reason", REQUIRED, {})]
    assert check_phone("phone", "090 123 4567") == "0901234567"
    assert check_id("agency_id", "7", required=True) == 7
    with pytest.raises(InvalidInput) as e:
        check_id("agency_id", None, required=True)
    assert e.value.fields() == ["agency_id"]


def test_validate_refuses_a_non_mapping():
    with pytest.raises(InvalidInput):
        validate(TicketCreate, ["not", "a", "dict"])  # type: ignore[arg-type]
