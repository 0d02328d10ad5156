"""What a web report adds to a ticket (reporter's email, district, consent, map pin) and
its photos, written with the ticket or not at all; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image
from sqlalchemy import func, select

import tickets.service as service_module
from accounts.identity import Actor
from accounts.models import Role
from core.clock import FakeClock
from tests.helpers import settings_in
from tickets.attachments import attachments_dir, check_photo, path_of
from tickets.exceptions import InvalidInput
from tickets.models import Attachment, Ticket
from tickets.service import TicketService

WEB = Actor(id=None, name="web form", role=Role.AGENT)
REPORT = {
    "channel": "web",
    "domain": "state",
    "topic": "flooding",
    "level": 2,
    "description": "Ngập sâu trước chợ Bến Thành",
}


def photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def service(db, tmp_path):
    settings = settings_in(tmp_path)
    return TicketService(db, settings, FakeClock(datetime(2026, 12, 6, 9, tzinfo=UTC)))


async def test_the_web_fields_are_stored(service):
    shot = check_photo(photo(), max_bytes=10**6, max_pixels=10**6, original_name="a.png")
    t = await service.create(
        WEB,
        {
            **REPORT,
            "reporter_email": "an@example.vn",
            "district": "Quận 1",
            "latitude": "10.7721234567",
            "longitude": 106.698,
            "publish_consent": "yes",
        },
        attachments=[shot],
    )
    assert (t.reporter_email, t.district, t.publish_consent) == ("an@example.vn", "Quận 1", True)
    assert (t.latitude, t.longitude, t.created_by) == (10.772123, 106.698, None)
    async with service.db.session() as s:
        (a,) = (await s.scalars(select(Attachment).where(Attachment.ticket_id == t.id))).all()
    assert (a.content_type, a.size, a.width, a.height) == ("image/png", len(photo()), 20, 10)
    assert path_of(service.settings, a.id).read_bytes() == photo()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"publish_consent": "perhaps"}, "publish_consent"),
        ({"publish_consent": 2}, "publish_consent"),
        ({"latitude": "91", "longitude": "0"}, "latitude"),
        ({"latitude": "nan", "longitude": "0"}, "latitude"),
        ({"latitude": True, "longitude": "0"}, "latitude"),
        ({"latitude": "10", "longitude": None}, "longitude"),
        ({"longitude": "106"}, "longitude"),
        ({"district": "x" * 81}, "district"),
        ({"reporter_email": "nobody"}, "reporter_email"),
    ],
)
async def test_bad_web_fields_are_refused_naming_the_field(service, change, field):
    with pytest.raises(InvalidInput) as e:
        await service.create(WEB, {**REPORT, **change})
    assert field in e.value.fields()


async def test_a_failure_after_a_photo_was_written_leaves_no_file_and_no_ticket(
    service, monkeypatch
):
    real = service_module.write_file
    calls = []

    def second_fails(settings, attachment_id, data):  # type: ignore[no-untyped-def]
        calls.append(attachment_id)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(settings, attachment_id, data)

    monkeypatch.setattr(service_module, "write_file", second_fails)
    shot = check_photo(photo(), max_bytes=10**6, max_pixels=10**6)
    with pytest.raises(OSError):
        await service.create(WEB, REPORT, attachments=[shot, shot])
    d = attachments_dir(service.settings)
    assert not d.exists() or list(d.iterdir()) == []
    async with service.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Ticket)) == 0
        assert await s.scalar(select(func.count()).select_from(Attachment)) == 0
