"""Migration 0028 on real SQLite and PostgreSQL, with data: tickets written before it
keep everything and gain no article; the way down keeps the tickets (even one answered
with an article) and takes the knowledge base away; the way up again works."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, inspect, text

from core.db import sync_url
from tests.helpers import alembic_cfg

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


async def test_0028_up_down_up_keeps_the_tickets(database_url):
    cfg = alembic_cfg(database_url)
    await asyncio.to_thread(command.upgrade, cfg, "0027")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as c:
            ticket_id = c.execute(
                text(
                    "INSERT INTO tickets (code, number, channel, domain, topic, level,"
                    " description, guidance, status, escalations, created_at, updated_at, version)"
                    " VALUES ('K7M-4QX8', '1234567890', 'phone', 'state', 'other', 1,"
                    " 'Hỏi thủ tục', 'Đã hướng dẫn', 'closed', 0, :t, :t, 1) RETURNING id"
                ),
                {"t": T0},
            ).scalar_one()
            c.execute(
                text(
                    "INSERT INTO ticket_events (ticket_id, at, actor_name, action, details)"
                    " VALUES (:i, :t, 'agent', 'created', '{}')"
                ),
                {"i": ticket_id, "t": T0},
            )
        await asyncio.to_thread(command.upgrade, cfg, "0028")
        with engine.begin() as c:
            row = c.execute(text("SELECT guidance, kb_article_id FROM tickets")).one()
            assert tuple(row) == ("Đã hướng dẫn", None)
            article_id = c.execute(
                text(
                    "INSERT INTO kb_articles (code, title, steps, version, created_at,"
                    " updated_at) VALUES ('khai-sinh', 'Đăng ký khai sinh', '1. Nộp.', 1, :t, :t)"
                    " RETURNING id"
                ),
                {"t": T0},
            ).scalar_one()
            c.execute(
                text(
                    "INSERT INTO kb_article_versions (article_id, version, title, steps,"
                    " edited_by_name, edited_at) VALUES (:a, 1, 'Đăng ký khai sinh', '1. Nộp.',"
                    " 'admin', :t)"
                ),
                {"a": article_id, "t": T0},
            )
            c.execute(
                text("UPDATE tickets SET kb_article_id = :a, kb_article_version = 1"),
                {"a": article_id},
            )
        await asyncio.to_thread(command.downgrade, cfg, "0027")
        with engine.connect() as c:
            assert c.execute(text("SELECT code, guidance FROM tickets")).one() == (
                "K7M-4QX8",
                "Đã hướng dẫn",
            )
            assert c.execute(text("SELECT count(*) FROM ticket_events")).scalar_one() == 1
            names = set(inspect(c).get_table_names())
            assert not names & {"kb_articles", "kb_article_versions", "kb_searches"}
            columns = {col["name"] for col in inspect(c).get_columns("tickets")}
            assert not columns & {"kb_article_id", "kb_article_version"}
        await asyncio.to_thread(command.upgrade, cfg, "head")
        with engine.connect() as c:
            assert c.execute(text("SELECT kb_article_id FROM tickets")).scalar_one() is None
    finally:
        engine.dispose()
