"""The agency directory as CSV: the dry run (pure, against agencies in memory) and the
import on real SQLite and PostgreSQL (all or nothing, parents before children)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from accounts.identity import Actor
from accounts.models import Role
from core.clock import FakeClock
from tickets.directory import (
    ADDED,
    CHANGED,
    DUPLICATE,
    ERROR,
    NOT_CSV,
    UNCHANGED,
    UNKNOWN_COLUMN,
    DirectoryFiles,
    export_csv,
    make_plan,
)
from tickets.exceptions import (
    AGENCY_CODE,
    CYCLE,
    EMAIL,
    NOT_ALLOWED,
    REQUIRED,
    UNKNOWN,
    Forbidden,
    InvalidInput,
    VersionConflict,
)
from tickets.models import Agency

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
HEADER = "code,parent_code,kind,name,contact_name,phone,email,address,active\n"


def stored() -> list[Agency]:
    def a(id_, code, kind, name, parent=None, **kw):
        return Agency(
            id=id_,
            code=code,
            kind=kind,
            name=name,
            parent_id=parent,
            active=True,
            contact_name=kw.get("contact_name"),
            phone=kw.get("phone"),
            email=kw.get("email"),
            address=kw.get("address"),
            created_at=T0,
            updated_at=T0,
            version=1,
        )

    return [
        a(1, "q1", "district", "UBND Quận 1", phone="02838291234", email="q1@tphcm.gov.vn"),
        a(2, "q1-p-ben-nghe", "ward", "UBND Phường Bến Nghé", 1, contact_name="Chị Lan"),
        a(3, "so-gtvt", "department", "Sở Giao thông Vận tải"),
    ]


def outcomes(plan) -> list[tuple[int, str, str]]:
    return [(r.line, r.code, r.outcome) for r in plan.rows]


def test_an_export_imported_again_changes_nothing():
    text = export_csv(stored())
    assert text.splitlines()[0] == HEADER.strip()
    # parents before sub-agencies
    codes = [line.split(",")[0] for line in text.splitlines()[1:]]
    assert codes.index("q1") < codes.index("q1-p-ben-nghe")
    plan = make_plan(text, stored())
    assert plan.ok and {r.outcome for r in plan.rows} == {UNCHANGED}
    assert "Chị Lan" in text  # staff see the contact person in their export


def test_the_dry_run_lists_added_changed_unchanged_and_errors_by_line_and_field():
    text = HEADER + (
        "q1,,district,UBND Quận 1,,028 3829 1234,q1@tphcm.gov.vn,,1\n"  # unchanged
        "so-gtvt,,department,Sở GTVT,,,,,1\n"  # changed: the name
        "q3,,district,UBND Quận 3,,,,,\n"  # added
        "q3-p1,q3,ward,UBND Phường 1 Quận 3,,,,,\n"  # added, under one added by the file
        "q1-p-ben-nghe,q1,ward,UBND Phường Bến Nghé,Chị Lan,,not-an-email,,1\n"  # error: email
        "xx,nowhere,ward,Phường X,,,,,\n"  # error: unknown parent
        "q3,,district,Again,,,,,\n"  # error: the same code twice
        "-bad,,ward,Bad,,,,,\n"  # error: the code
        "yy,,planet,Y,,,,,yes\n"  # error: the kind
        "zz,,ward,,,,,,maybe\n"  # errors: the name
    )
    plan = make_plan(text, stored())
    assert not plan.ok
    assert outcomes(plan) == [
        (2, "q1", UNCHANGED),
        (3, "so-gtvt", CHANGED),
        (4, "q3", ADDED),
        (5, "q3-p1", ADDED),
        (6, "q1-p-ben-nghe", ERROR),
        (7, "xx", ERROR),
        (8, "q3", ERROR),
        (9, "-bad", ERROR),
        (10, "yy", ERROR),
        (11, "zz", ERROR),
    ]
    assert plan.rows[1].changes == {"name": ["Sở Giao thông Vận tải", "Sở GTVT"]}
    assert plan.rows[3].changes["parent_code"] == [None, "q3"]
    errors = [(line, e.field, e.message) for line, e in plan.all_errors()]
    assert errors == [
        (6, "email", EMAIL),
        (7, "parent_code", UNKNOWN),
        (8, "code", DUPLICATE),
        (9, "code", AGENCY_CODE),
        (10, "kind", NOT_ALLOWED),
        (11, "name", REQUIRED),
    ]


def test_a_file_that_is_not_the_directory_is_refused_as_a_whole():
    plan = make_plan("code,colour\nq1,red\n", stored())
    assert not plan.ok and plan.rows == []
    assert [(line, e.field, e.message) for line, e in plan.errors] == [
        (1, "colour", UNKNOWN_COLUMN)
    ]
    assert [e.field for _, e in make_plan("name\nX\n", stored()).errors] == ["code"]
    assert [e.message for _, e in make_plan("a\x00b", stored()).errors] == [NOT_CSV]
    # a column left out keeps what is stored; an empty cell clears
    plan = make_plan("code,phone\nq1,\n", stored())
    assert outcomes(plan) == [(2, "q1", CHANGED)]
    assert plan.rows[0].changes == {"phone": ["02838291234", None]}
    plan = make_plan("code,name\nq1-p-ben-nghe,Phường Bến Nghé\n", stored())
    assert plan.rows[0].changes == {"name": ["UBND Phường Bến Nghé", "Phường Bến Nghé"]}


def test_a_parent_under_its_own_child_is_refused():
    plan = make_plan("code,parent_code\nq1,q1-p-ben-nghe\n", stored())
    assert [(e.field, e.message) for _, e in plan.all_errors()] == [("parent_code", CYCLE)]


# -- on the databases ---------------------------------------------------------------


ADMIN = Actor(id=None, name="Admin", role=Role.ADMIN)


@pytest.fixture
async def files(db):
    rows = stored()
    async with db.session() as s:
        for a in rows:
            a.id = None  # the database numbers them (PostgreSQL's sequence too)
        s.add(rows[0])
        await s.flush()
        rows[1].parent_id = rows[0].id
        s.add_all(rows[1:])
    return DirectoryFiles(db, FakeClock(T0))


async def by_code(db) -> dict[str, Agency]:
    async with db.session() as s:
        return {a.code: a for a in (await s.scalars(select(Agency))).all()}


async def test_an_import_writes_all_or_nothing(db, files):
    good = HEADER + (
        "q3-p1,q3,ward,UBND Phường 1 Quận 3,,,,,\n"  # the child first in the file
        "q3,,district,UBND Quận 3,,1022,q3@tphcm.gov.vn,,\n"
        "so-gtvt,,department,Sở GTVT,,,,,0\n"
    )
    bad = good + "q1,nowhere,district,UBND Quận 1,,,,,\n"
    before = await by_code(db)
    with pytest.raises(InvalidInput):
        await files.apply(ADMIN, bad)
    assert (await by_code(db)).keys() == before.keys()  # nothing written
    plan = await files.plan(ADMIN, good)
    assert [r.outcome for r in plan.rows] == [ADDED, ADDED, CHANGED]
    done = await files.apply(ADMIN, good, plan.fingerprint)
    assert done.count(ADDED) == 2
    after = await by_code(db)
    assert after["q3-p1"].parent_id == after["q3"].id
    assert (after["q3"].phone, after["q3"].email) == ("1022", "q3@tphcm.gov.vn")
    assert (after["so-gtvt"].name, after["so-gtvt"].active, after["so-gtvt"].version) == (
        "Sở GTVT",
        False,
        2,
    )
    # again: nothing to do
    again = await files.plan(ADMIN, good)
    assert {r.outcome for r in again.rows} == {UNCHANGED}
    # a dry run shown before someone else's change is not applied
    stale = await files.plan(ADMIN, HEADER + "q1,,district,Quận Một,,,,,\n")
    await files.apply(ADMIN, HEADER + "q1,,district,Quận 1 mới,,,,,\n")
    with pytest.raises(VersionConflict):
        await files.apply(ADMIN, HEADER + "q1,,district,Quận Một,,,,,\n", stale.fingerprint)
    assert (await by_code(db))["q1"].name == "Quận 1 mới"
    exported = await files.export()
    assert make_plan(exported, list((await by_code(db)).values())).count(UNCHANGED) == 5


async def test_only_admins_import(files):
    agent = Actor(id=None, name="A", role=Role.AGENT)
    sup = Actor(id=None, name="S", role=Role.SUPERVISOR)
    with pytest.raises(Forbidden):
        await files.plan(sup, HEADER)
    with pytest.raises(Forbidden):
        await files.apply(sup, HEADER)
    with pytest.raises(Forbidden):
        await files.export(agent)
    assert (await files.export(sup)).startswith("code,")


async def test_the_directory_is_read_once_for_the_requests_that_find_it_old(db, files):
    """The public pages name agencies from AgencyService.directory(): when its copy is
    old, the requests in flight share one read, and a change here is never hidden by a
    read that started before it."""
    import asyncio

    from tickets.agencies import AgencyService

    service = AgencyService(db, FakeClock(T0))
    reads = 0
    list_all = service.list

    async def counted(include_inactive: bool = False):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)
        return await list_all(include_inactive)

    service.list = counted  # type: ignore[method-assign]
    got = await asyncio.gather(*(service.directory() for _ in range(10)))
    assert reads == 1 and len({id(d) for d in got}) == 1
    assert set(got[0].names.values()) >= {a.name for a in stored()}
    await service.directory()
    assert reads == 1  # kept for CACHE_SECONDS
    # a change made here: the next request reads again, and sees it
    async with db.session() as s:
        agency = (await s.scalars(select(Agency).where(Agency.code == "q1"))).one()
    await service.update(ADMIN, agency.id, agency.version, {"name": "UBND Quận Một"})
    assert "UBND Quận Một" in (await service.directory()).names.values()
    assert reads == 2
