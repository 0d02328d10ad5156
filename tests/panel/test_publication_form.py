"""The staff side of publication: the ticket form takes the citizen's consent, the
reporter's email and the district; only admins withhold a report or release it, and
the history records it.  Real Redis, SQLite and PostgreSQL, the panel's real routes."""

from __future__ import annotations

import re

import pytest

from accounts.identity import SYSTEM, Actor
from tickets.models import TicketEvent
from tickets.queries import TicketFilter

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

FORM = {
    "channel": "phone",
    "citizen_phone": "0909 111 222",
    "domain": "state",
    "topic": "flooding",
    "level": "2",
    "description": "Ngập nước đường Trần Hưng Đạo",
}


async def create(panel, csrf: str, **fields):
    r = await panel.client.post(
        "/tickets", data={"_csrf": csrf, **FORM, **fields}, allow_redirects=False
    )
    return r


async def test_the_form_takes_consent_email_and_district(panel):
    csrf = await panel.login("agent1")
    page = await (await panel.client.get("/tickets/new")).text()
    assert '<option value="q1">UBND Quận 1</option>' in page  # the directory's districts
    assert 'name="publish_consent"' in page and 'name="reporter_email"' in page
    r = await create(
        panel, csrf, publish_consent="1", reporter_email="dan@example.vn", district="q1"
    )
    assert r.status == 303, await r.text()
    code = r.headers["Location"].rsplit("/", 1)[1]
    t = await panel.ctx.ticket_queries.get_by_code(code)
    assert (t.publish_consent, t.reporter_email, t.district) == (True, "dan@example.vn", "q1")
    page = await (await panel.client.get(f"/tickets/{code}")).text()
    assert re.search(r'id="ticket-district">UBND Quận 1<', page)
    assert "sẽ công khai khi xử lý xong" in page
    assert 'id="action-withhold"' not in page  # an agent may not withhold

    # free text for a district outside the directory; no tick: no consent
    r = await create(panel, csrf, district="Huyện Cần Giờ")
    t2 = await panel.ctx.ticket_queries.get_by_code(r.headers["Location"].rsplit("/", 1)[1])
    assert (t2.publish_consent, t2.district, t2.reporter_email) == (False, "Huyện Cần Giờ", None)

    # the edit form can take the consent back (the hidden "0" before the box)
    r = await panel.client.post(
        f"/tickets/{code}/edit",
        data=[
            ("_csrf", csrf),
            ("version", str(t.version)),
            ("description", t.description),
            ("publish_consent", "0"),
        ],
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    t = await panel.ctx.ticket_queries.get_by_code(code)
    assert t.publish_consent is False


async def test_bad_values_are_refused_by_their_field(panel):
    csrf = await panel.login("agent1")
    before = (await panel.ctx.ticket_queries.search(TicketFilter(), actor=SYSTEM))[1]
    for fields, name, said in [
        ({"reporter_email": "not an email"}, "reporter_email", "phải là địa chỉ email"),
        ({"district": "x" * 81}, "district", "quá dài (tối đa 80 ký tự)"),
        ({"publish_consent": "maybe"}, "publish_consent", "không thuộc các giá trị cho phép"),
    ]:
        r = await create(panel, csrf, **fields)
        page = await r.text()
        assert r.status == 422, fields
        error = re.search(rf'id="err-{name}"[^>]*>([^<]+)<', page)
        assert error is not None and said in error.group(1), (fields, page[:2000])
    assert (await panel.ctx.ticket_queries.search(TicketFilter(), actor=SYSTEM))[1] == before


async def test_only_admins_withhold_and_the_history_says_so(panel):
    svc = panel.ctx.tickets
    agent = Actor.of(panel.users["agent1"])
    t = await svc.create(agent, {**FORM, "level": 2, "publish_consent": True})
    for who in ("agent1", "sup"):
        async with await panel.new_client() as browser:
            csrf = await panel.login(who, browser)
            r = await browser.post(
                f"/tickets/{t.code}/withhold",
                data={"_csrf": csrf, "version": str(t.version)},
                allow_redirects=False,
            )
            assert r.status == 403, who
    assert (await panel.ctx.ticket_queries.get(t.id)).withheld is False

    csrf = await panel.login("admin")
    r = await panel.client.post(
        f"/tickets/{t.code}/withhold",
        data={"_csrf": csrf, "version": str(t.version), "note": "Nêu tên người khác"},
        allow_redirects=False,
    )
    assert r.status == 303
    t = await panel.ctx.ticket_queries.get(t.id)
    assert t.withheld is True
    # a stale form is refused, not applied twice
    r = await panel.client.post(
        f"/tickets/{t.code}/release",
        data={"_csrf": csrf, "version": str(t.version - 1)},
        allow_redirects=False,
    )
    assert r.status == 409
    history: list[TicketEvent] = await panel.ctx.ticket_queries.history(t.id)
    last = history[-1]
    assert (last.action, last.actor_name) == ("withheld", "Quản trị")
    assert "Nêu tên người khác" in last.details
    page = await (await panel.client.get(f"/tickets/{t.code}")).text()
    assert "quản trị viên không cho công khai" in page and 'id="action-release"' in page
    assert "đã không cho công khai" in page
    # the API shows it
    body = await (await panel.client.get(f"/api/v1/tickets/{t.code}")).json()
    assert body["withheld"] is True and body["publish_consent"] is True
