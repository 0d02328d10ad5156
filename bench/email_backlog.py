"""Email backlog: 5,000 mails waiting in the mailbox, fetched and stored.

    .venv/bin/python -m bench.email_backlog                     # 5,000 mails, SQLite and PostgreSQL
    .venv/bin/python -m bench.email_backlog --mails 500 --db sqlite   # a quick look

The mailbox is a private Dovecot (Debian's dovecot-imapd, as in the tests:
tests/email/servers.py) on loopback ports of HOTLINE_LAB_SLOT, over TLS, with
--mails mails delivered into its Maildir before the clock starts: citizens'
reports of 1-3 kB in Vietnamese, one in five with an HTML part, one in ten
with a 30 kB JPEG attachment (kept, decoded and written by id), one in fifty an
auto-reply.  For each database (SQLite in a temporary folder; PostgreSQL a
database of its own, dropped at the end) a fresh schema is migrated, then the
real reader (mail.imap.MailboxReader) connects, logs in, selects the folder
and reads everything waiting into the real intake (inbox.email.EmailIntake,
Redis announcements included).  The clock runs from the connection to the
last batch flagged \\Seen on the server; the run then checks that the table
holds exactly one message per mail and that Dovecot has no unseen mail left.

Target (issue 14): 5,000 mails in at most 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core.bus import Bus
from core.clock import Clock
from core.db import Database
from hotline.app import panel_context
from hotline.system import migrate
from inbox.email import EmailIntake
from inbox.models import Message
from mail.imap import MailboxReader
from tests.email.conftest import email_settings, mail
from tests.email.servers import Dovecot, mail_folder, make_certificate

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def photo() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((160, 120), 80).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def fill(dovecot: Dovecot, count: int) -> int:
    jpeg = photo()
    total = 0
    for i in range(count):
        text = (f"Phản ánh số {i}: đường Lê Lợi ngập sâu sau cơn mưa, xe máy chết máy. " * 20)[
            : 1000 + (i % 3) * 800
        ]
        kw: dict = {}
        if i % 5 == 0:
            kw["html"] = f"<p>{text}</p><script>x()</script>"
        if i % 10 == 0:
            kw["attachments"] = [(f"anh{i}.jpg", "image/jpeg", jpeg)]
        if i % 50 == 0:
            kw["headers"] = {"Auto-Submitted": "auto-replied"}
        raw, _ = mail(sender=f"dan{i % 700}@example.org", subject=f"Ngập nước {i}", text=text, **kw)
        dovecot.deliver(raw)
        total += len(raw)
    return total


async def run(db_kind: str, count: int) -> dict[str, float]:
    folder = mail_folder()
    home = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    pg_name = None
    if db_kind == "sqlite":
        url = f"sqlite:///{home / 'hotline.db'}"
    else:
        pg_name = f"hotline_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        url = make_url(PG_ADMIN).set(database=pg_name).render_as_string(hide_password=False)
    prefix = f"mailbench{uuid.uuid4().hex[:8]}"
    cert, key = make_certificate(folder)
    settings = email_settings(home, url, prefix, cert)
    migrate(settings)
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    dovecot = Dovecot(folder, cert, key)
    try:
        size = fill(dovecot, count)
        dovecot.start()
        ctx = panel_context(settings, db=db, bus=bus, clock=Clock(), control=None)
        assert ctx.inbox is not None
        reader = MailboxReader(settings, EmailIntake(ctx.inbox).store_batch, Clock())
        t0 = time.perf_counter()
        stored = await reader.once()
        seconds = time.perf_counter() - t0
        async with db.session() as s:
            rows = await s.scalar(select(func.count(Message.id)))
            distinct = await s.scalar(select(func.count(func.distinct(Message.external_id))))
        unseen = dovecot.unseen()
        ok = stored == count and rows == count and distinct == count and unseen == 0
        print(
            f"{db_kind}: {count} mails ({size / 1e6:.1f} MB) in {seconds:.1f} s = "
            f"{count / seconds:.0f} mails/s; rows {rows}, distinct {distinct}, unseen {unseen}"
            f" -> {'OK' if ok else 'WRONG'}",
            flush=True,
        )
        if not ok:
            raise SystemExit(1)
        return {"seconds": seconds, "per_second": count / seconds, "mb": size / 1e6}
    finally:
        dovecot.stop()
        keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        if pg_name:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mails", type=int, default=5000)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        results = [asyncio.run(run(kind, args.mails)) for _ in range(args.runs)]
        secs = sorted(r["seconds"] for r in results)[len(results) // 2]
        print(f"{kind}: median {secs:.1f} s for {args.mails} mails ({args.mails / secs:.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
