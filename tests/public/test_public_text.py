"""tickets.public_text: what the portal searches, written with the ticket and by
migration 0019 for the tickets before it; never the citizen's name, phone or address."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from core.db import sync_url
from tests.helpers import alembic_cfg

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


async def test_0019_writes_public_text_for_earlier_tickets(database_url):
    cfg = alembic_cfg(database_url)
    await asyncio.to_thread(command.upgrade, cfg, "0018")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO tickets (code, number, channel, citizen_phone, citizen_name,"
                    " citizen_address, district, domain, topic, level, description, status,"
                    " escalations, created_at, updated_at, version) VALUES ('K7M-4QX8',"
                    " '1234567890', 'phone', '0901234567', 'Nguyễn Hữu Cảnh', 'Hẻm 5',"
                    " 'Quận Bình Thạnh', 'state', 'trees', 2, 'Cây đổ trên Đường 3/2',"
                    " 'new', 0, :t, :t, 1)"
                ),
                {"t": T0},
            )
        await asyncio.to_thread(command.upgrade, cfg, "head")
        with engine.connect() as c:
            assert c.execute(text("SELECT public_text FROM tickets")).scalar_one() == (
                "quan binh thanh\ncay do tren duong 3/2"
            )
        await asyncio.to_thread(command.downgrade, cfg, "0018")
        with engine.connect() as c:
            assert "public_text" not in {col["name"] for col in inspect(c).get_columns("tickets")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_edit_is_searched_at_once(site):
    t = await site.completed(description="Cây đổ", citizen_name="Lê Lợi")
    assert "le loi" not in t.public_text and t.public_text == "\ncay do"
    # a supervisor corrects an open one; the portal's search sees the new words
    open_t = await site.report(description="Đèn hỏng")
    await site.panel.ctx.tickets.update(
        site.actor("sup"),
        open_t.id,
        open_t.version,
        {"description": "Đèn đường hỏng ở Quận 5", "district": "q5"},
    )
    got = await site.panel.ctx.ticket_queries.get(open_t.id)
    assert got.public_text == "q5\nden duong hong o quan 5"
