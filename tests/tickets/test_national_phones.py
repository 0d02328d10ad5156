"""Every form of a citizen's number is one number: stored in its national form,
written so by migration 0021 for rows from before, and matched across sources."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, text

from core.db import sync_url
from tests.helpers import alembic_cfg

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
_TICKET = (
    "INSERT INTO tickets (code, number, channel, citizen_phone, domain, topic, level,"
    " description, status, escalations, created_at, updated_at, version, search_text)"
    " VALUES (:code, :number, 'phone', :phone, 'state', 'trees', 2, 'Cây đổ', 'new', 0,"
    " :t, :t, 1, :search)"
)


async def test_0021_puts_earlier_numbers_in_national_form(database_url):
    cfg = alembic_cfg(database_url)
    await asyncio.to_thread(command.upgrade, cfg, "0020")
    engine = create_engine(sync_url(database_url))
    rows = {
        "K7M-4QX8": "+84901234567",
        "K7M-4QX9": "84912345678",
        "K7M-4QXA": "0987654321",
        "K7M-4QXB": "+14155550100",
        "K7M-4QXC": None,
    }
    try:
        with engine.begin() as c:
            for i, (code, phone) in enumerate(rows.items()):
                c.execute(
                    text(_TICKET),
                    {
                        "code": code,
                        "number": f"{1234567890 + i}",
                        "phone": phone,
                        "t": T0,
                        "search": f"{code.lower()}\n{phone or ''}\ncay do",
                    },
                )
        await asyncio.to_thread(command.upgrade, cfg, "head")
        with engine.connect() as c:
            got = dict(c.execute(text("SELECT code, citizen_phone FROM tickets")).all())
            search = dict(c.execute(text("SELECT code, search_text FROM tickets")).all())
        assert got == {
            "K7M-4QX8": "0901234567",
            "K7M-4QX9": "0912345678",
            "K7M-4QXA": "0987654321",
            "K7M-4QXB": "+14155550100",
            "K7M-4QXC": None,
        }
        assert search["K7M-4QX8"] == "k7m-4qx8\n0901234567\ncay do"
        assert search["K7M-4QXB"] == "k7m-4qxb\n+14155550100\ncay do"
    finally:
        engine.dispose()
