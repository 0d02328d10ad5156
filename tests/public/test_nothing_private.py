"""No public page ever shows a citizen's name, phone, email or address, a staff
member's name, or a Party-building, denunciation or corruption report.

Reports are seeded with a distinctive marker in each of those places (and in the
staff's notes), in every state; then every public page is fetched (the status page
with right and wrong look-ups, the portal, its search for each marker and its
filters, each report's page, the error pages, both languages) and every body is
searched for every marker.  This fails as soon as one leaks.
"""

from __future__ import annotations

import html
from urllib.parse import quote, quote_plus

import pytest

from accounts.identity import Actor
from tests.panel.conftest import PASSWORD
from tickets.confidential import restricted

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NAME = "Nguyễn Mậtdanh Xyzq"
PHONE = "0987 654 321"
EMAIL = "riengtu.xyzq@example.vn"
ADDRESS = "99 Hẻm Bímật Xyzq"
STAFF = "Cánbộ Tênriêng Xyzq"
OFFICER = "Chuyênviên Kín Xyzq"
CONTACT = "Liênhệ Nộibộ Xyzq"
NOTE = "Ghichú Nộibộ Xyzq"
PARTY = "Đảngviên Báocáo Xyzq"
DENOUNCE = "Tốcáo Báocáo Xyzq"
CORRUPT = "Thamnhũng Báocáo Xyzq"
WITHHELD = "Bịgiữ Báocáo Xyzq"

# what must never be in a public answer, and the forms it could take there
MARKERS = {
    "citizen name": [NAME, "Mậtdanh", "matdanh"],
    "phone": ["0987654321", PHONE, "654321", "654 321"],
    "email": [EMAIL, "riengtu"],
    "address": [ADDRESS, "Bímật", "bimat"],
    "staff name": [STAFF, "Tênriêng", OFFICER, "Chuyênviên", CONTACT, "Liênhệ"],
    "staff note": [NOTE, "Ghichú"],
    "party building": [PARTY, "Đảngviên"],
    "denunciation": [DENOUNCE, "Tốcáo"],
    "corruption": [CORRUPT, "Thamnhũng"],
    "withheld": [WITHHELD, "Bịgiữ"],
}


async def seed(site) -> tuple[list, object]:
    """Reports in every state carrying the markers; returns them and a published one."""
    ctx = site.panel.ctx
    admin = site.actor("admin")
    staff = Actor.of(
        await ctx.accounts.create_user(
            admin,
            {"username": "xyzq", "display_name": STAFF, "role": "supervisor", "password": PASSWORD},
        )
    )
    agency = await ctx.agencies.create(
        admin,
        {
            "kind": "district",
            "code": "q7",
            "name": "UBND Quận 7",
            "contact_name": CONTACT,
            "phone": "028 3777 1234",
            "email": "q7@example.vn",
            "address": "Nội bộ",
        },
    )
    officer = Actor.of(
        await ctx.accounts.create_user(
            admin,
            {
                "username": "officer_q7",
                "display_name": OFFICER,
                "role": "agency",
                "password": PASSWORD,
                "agency_id": agency.id,
            },
        )
    )
    svc = ctx.tickets
    private = {
        "citizen_name": NAME,
        "citizen_phone": PHONE,
        "citizen_address": ADDRESS,
        "reporter_email": EMAIL,
        "publish_consent": True,
        "district": "q7",
    }

    async def make(description, *, domain="state", topic="flooding", close=True):
        t = await svc.create(
            staff,
            {
                "channel": "phone",
                "domain": domain,
                "topic": topic,
                "level": 2,
                "description": description,
                "agency_id": agency.id,
                **private,
            },
        )
        await svc.comment(staff, t.id, NOTE)
        t = await svc.accept(officer, t.id, t.version)
        if close:
            t = await svc.answer(officer, t.id, t.version, "Đã khơi thông cống thoát nước.")
            t = await svc.close(staff, t.id, t.version)
        return t

    shown = await make("Ngập nước đường Huỳnh Tấn Phát")
    tickets = [
        shown,
        await make("Ngập đang xử lý", close=False),
        await make(PARTY, domain="party", topic="other"),
        await make(DENOUNCE, topic="complaints"),
        await make(CORRUPT, topic="corruption"),
    ]
    held = await make(WITHHELD)
    await svc.set_withheld(admin, held.id, held.version, True, NOTE)
    tickets.append(held)
    return tickets, shown


async def test_no_public_page_shows_anything_private(site):
    tickets, shown = await seed(site)
    c = site.client
    bodies: list[tuple[str, int, str]] = []
    clients = iter(range(1, 10_000))

    async def fetch(method: str, path: str, **kw) -> int:
        # each from its own address: the look-up limit is tested elsewhere
        n = next(clients)
        client = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
        r = await c.request(method, path, headers={"X-Forwarded-For": client}, **kw)
        body = await r.text()
        # what the visitor typed is shown back in its field: theirs, not a leak
        # (in the field, and in the language switch's link back to this page); the
        # other pages, and other words, still show any leak
        for typed in (*kw.get("params", {}).values(), *kw.get("data", {}).values()):
            encoded = {quote(typed), quote_plus(typed), quote(typed, safe="")}
            forms = {html.escape(typed), *encoded, *(quote(e, safe="/") for e in encoded)}
            for form in sorted(forms, key=len, reverse=True):
                body = body.replace(form, "[typed]")
        bodies.append((f"{method} {path} {kw}", r.status, body))
        return r.status

    for lang in ("vi", "en"):
        c.session.cookie_jar.update_cookies({"public_lang": lang})
        assert await fetch("GET", "/") == 200
        assert await fetch("GET", "/status") == 200
        for t in tickets:
            # the citizen's own look-up shows their report's status, still nothing private;
            # a restricted report is not found there at all (tickets.confidential)
            own = 404 if restricted(t, site.panel.ctx.settings.tickets) else 200
            assert await fetch("POST", "/status", data={"number": t.number, "check": "321"}) == own
            assert await fetch("POST", "/status", data={"number": t.code, "check": EMAIL}) == own
            assert await fetch("POST", "/status", data={"number": t.number, "check": "000"}) == 404
            assert await fetch("GET", f"/reports/{t.number}") in (200, 404)
        assert await fetch("POST", "/status", data={"number": "12", "check": PHONE}) == 400
        assert await fetch("GET", "/reports") == 200
        for words in [w for forms in MARKERS.values() for w in forms] + ["xyzq", "ngap"]:
            assert await fetch("GET", "/reports", params={"q": words}) == 200
        for topic in ("flooding", "other"):
            assert await fetch("GET", "/reports", params={"topic": topic}) == 200
        assert await fetch("GET", "/reports", params={"district": "q7"}) == 200
        assert await fetch("GET", "/directory") == 200
        assert await fetch("GET", "/reports", params={"page": "x"}) == 400
        assert await fetch("GET", "/no-such-page") == 404
        assert await fetch("DELETE", "/reports") == 405
        assert await fetch("POST", "/status", json={"number": shown.number}) == 415
    # the pages did show the published report, so the search above was not empty
    assert any(shown.description in body for _, _, body in bodies)

    leaks = [
        f"{what} ({form!r}) in {where} -> {status}"
        for where, status, body in bodies
        for what, forms in MARKERS.items()
        for form in forms
        if form.casefold() in body.casefold()
    ]
    assert not leaks, "\n".join(leaks[:20])
