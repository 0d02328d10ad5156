"""The publication rule: its SQL form and its Python form agree on every case (both databases)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy import select

from core.db import Database
from core.settings import TicketSettings
from tickets.models import Domain, Status, Ticket
from tickets.numbers import new_number
from tickets.publication import is_published, published


async def test_sql_and_python_agree_on_every_case(db: Database):
    settings = TicketSettings()
    now = datetime(2026, 12, 6, 8, tzinfo=UTC)
    cases = list(
        itertools.product(
            (Status.CLOSED, Status.ANSWERED, Status.FORWARDED),
            (True, False),  # consent
            (True, False),  # withheld
            (Domain.STATE, Domain.PARTY),
            ("flooding", "corruption", "complaints"),
        )
    )
    async with db.session() as s:
        for i, (status, consent, withheld, domain, topic) in enumerate(cases):
            s.add(
                Ticket(
                    code=f"PUB-{i:04d}",
                    number=new_number(),
                    channel="web",
                    domain=domain.value,
                    topic=topic,
                    level=2,
                    description="x",
                    status=status.value,
                    publish_consent=consent,
                    withheld=withheld,
                    citizen_name="Nguyễn Văn A",
                    created_at=now,
                    updated_at=now,
                )
            )
        await s.commit()
        tickets = (await s.execute(select(Ticket))).scalars().all()
        shown = set((await s.execute(select(Ticket.id).where(published(settings)))).scalars())
    assert len(tickets) == len(cases)
    assert shown == {t.id for t in tickets if is_published(t, settings)}
    # exactly the closed, consented, not withheld, State-domain flooding reports
    assert len(shown) == 1


async def test_a_new_ticket_is_never_published_by_default(db: Database):
    now = datetime(2026, 12, 6, 8, tzinfo=UTC)
    async with db.session() as s:
        s.add(
            Ticket(
                code="PUB-DFLT",
                number=new_number(),
                channel="phone",
                domain="state",
                topic="flooding",
                level=1,
                description="x",
                status=Status.CLOSED.value,
                created_at=now,
                updated_at=now,
            )
        )
        await s.commit()
        ticket = (await s.execute(select(Ticket))).scalar_one()
    assert ticket.publish_consent is False and ticket.withheld is False
    assert not is_published(ticket, TicketSettings())
