"""The leaders' reports on a schedule: written once a period is over, kept, and sent.

Steps, each idempotent (``[periodic_reports]`` in the settings):

1. :func:`due`: for each configured period (daily, weekly, monthly) the last one that
   is over, once the local time has passed ``at`` on the day after it (a pure
   function of the clock).
2. :meth:`PeriodicReports.generate`: the report is built (:mod:`queue_stats.reports`),
   written as XLSX and PDF (:mod:`queue_stats.documents`, in a thread: CPU work), and
   stored: a row of ``periodic_reports`` and two files under
   ``<state_dir>/reports/``.  The row is inserted first; a second process writing the
   same period fails on its unique key and keeps nothing.
3. :meth:`PeriodicReports.send`: when there are ``recipients``, the two files are
   handed to the :class:`core.mail.Mailer` the composition root gives (none: email is
   not configured, which the row records).  Each try is claimed first (the row's
   ``send_attempts`` compared and bumped), so two processes never send it twice; a
   failed send is tried again on the next rounds, at most :data:`MAX_SEND_ATTEMPTS`
   times.
4. Stored reports older than ``keep_days`` are deleted, rows and files.

:class:`PeriodicReportWatch` runs these every ``check_seconds`` in the application
(one owner: ``hotline run``); the panel lists and serves what is stored, and
``hotline reports generate`` writes one by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.db import Database
from core.mail import MailAttachment, Mailer
from core.settings import Settings
from queue_stats import documents
from queue_stats.models import StoredReport
from queue_stats.reports import Report, for_period, month_of, next_month, week_of

log = logging.getLogger(__name__)

KINDS = ("daily", "weekly", "monthly")
MAX_SEND_ATTEMPTS = 5
NOT_CONFIGURED = "email is not configured"


def period(kind: str, day: date) -> tuple[date, date]:
    """The first day of ``kind``'s period holding ``day``, and the day after its last."""
    if kind == "daily":
        return day, day + timedelta(days=1)
    if kind == "weekly":
        monday = week_of(day)
        return monday, monday + timedelta(days=7)
    if kind == "monthly":
        first = month_of(day)
        return first, next_month(first)
    raise ValueError(f"kind: must be one of {', '.join(KINDS)}, not {kind!r}")


def due(settings: Settings, now: datetime) -> list[tuple[str, date]]:
    """The periods to write now: for each configured kind, the last one over (its first
    day), counting a period over once ``at`` has passed on the day after it."""
    cfg = settings.periodic_reports
    local = now.astimezone(settings.tz)
    # the last day whose "day after" has reached ``at``
    last = local.date() - timedelta(days=1 if local.time() >= cfg.at else 2)
    out = []
    for kind in cfg.periods:
        start, end = period(kind, last)
        if end - timedelta(days=1) != last:  # the period holding ``last`` is not over
            start, _ = period(kind, start - timedelta(days=1))
        out.append((kind, start))
    return out


@dataclass(frozen=True)
class Rendered:
    report: Report
    xlsx: bytes
    pdf: bytes


class PeriodicReports:
    """Writes, stores, sends and lists the periodic reports."""

    def __init__(
        self, db: Database, settings: Settings, clock: Clock, mailer: Mailer | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.mailer = mailer
        self.directory = settings.state_dir / "reports"

    # -- writing ------------------------------------------------------------------

    async def render(self, kind: str, day: date, lang: str) -> Rendered:
        """The report of ``kind`` holding ``day`` and its two documents (not stored)."""
        report = await for_period(self.db, self.settings, kind, day, self.clock.now())

        def both() -> tuple[bytes, bytes]:
            return (
                documents.xlsx(report, self.settings, lang),
                documents.pdf(report, self.settings, lang),
            )

        xlsx, pdf = await asyncio.to_thread(both)
        return Rendered(report, xlsx, pdf)

    async def generate(self, kind: str, day: date) -> tuple[StoredReport, bool]:
        """Write and store the report of ``kind`` holding ``day``; returns the row and
        whether this call wrote it (False: it was stored already, by us or another
        process).  Sending is :meth:`send`'s."""
        start, end = period(kind, day)
        stored = await self.find(kind, start)
        if stored is not None:
            return stored, False
        lang = self.settings.periodic_reports.language
        done = await self.render(kind, start, lang)
        recipients = self.settings.periodic_reports.recipients
        row = StoredReport(
            kind=kind,
            period_start=start,
            period_end=end,
            language=lang,
            generated_at=done.report.generated_at,
            xlsx_size=len(done.xlsx),
            pdf_size=len(done.pdf),
            recipients=json.dumps(list(recipients)),
            send_attempts=0,
        )
        try:
            async with self.db.session() as s:
                s.add(row)
                await s.flush()  # the unique (kind, period_start) decides who writes
                await asyncio.to_thread(self._write_files, row.file_stem, done)
                await s.refresh(row)
        except IntegrityError:
            existing = await self.find(kind, start)
            if existing is None:
                raise
            return existing, False
        log.info("periodic report %s %s written (%s)", kind, start, row.file_stem)
        return row, True

    def _write_files(self, stem: str, done: Rendered) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for suffix, data in (("xlsx", done.xlsx), ("pdf", done.pdf)):
            final = self.directory / f"{stem}.{suffix}"
            tmp = final.with_suffix(f".{suffix}.tmp")
            tmp.write_bytes(data)
            tmp.replace(final)

    async def send(self, report_id: int) -> bool:
        """Hand a stored report to the mail sender; True once sent.  No recipients:
        nothing to do.  No sender: the row says email is not configured."""
        row = await self.get(report_id)
        recipients = json.loads(row.recipients or "[]")
        if row.sent_at is not None or not recipients:
            return row.sent_at is not None
        # claim this try: of two processes sending at once, one sends
        async with self.db.session() as s:
            claimed = await s.execute(
                update(StoredReport)
                .where(
                    StoredReport.id == report_id,
                    StoredReport.sent_at.is_(None),
                    StoredReport.send_attempts == row.send_attempts,
                )
                .values(send_attempts=row.send_attempts + 1)
            )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        error: str | None = None
        if self.mailer is None:
            error = NOT_CONFIGURED
        else:
            title = f"{documents.TITLES[row.kind][row.language]} {row.period_start:%d/%m/%Y}"
            files = [
                MailAttachment(
                    f"{row.file_stem}.xlsx", documents.XLSX_TYPE, self._read(row, "xlsx")
                ),
                MailAttachment(f"{row.file_stem}.pdf", documents.PDF_TYPE, self._read(row, "pdf")),
            ]
            try:
                await self.mailer.send(recipients, title, _mail_text(row, title), files)
            except Exception as e:  # noqa: BLE001 - any failure of the sender is recorded
                error = f"{type(e).__name__}: {e}"[:500]
                log.warning("periodic report %s not sent: %s", row.file_stem, error)
        async with self.db.session() as s:
            await s.execute(
                update(StoredReport)
                .where(StoredReport.id == report_id)
                .values(sent_at=None if error else self.clock.now(), send_error=error)
            )
        if error is None:
            log.info("periodic report %s sent to %d recipients", row.file_stem, len(recipients))
        return error is None

    async def run_due(self) -> list[StoredReport]:
        """Write what is due, send what is unsent, delete what is too old; the rows
        written now."""
        written = []
        for kind, start in due(self.settings, self.clock.now()):
            row, new = await self.generate(kind, start)
            if new:
                written.append(row)
        async with self.db.session() as s:
            unsent = (
                await s.scalars(
                    select(StoredReport.id).where(
                        StoredReport.sent_at.is_(None),
                        StoredReport.recipients != "[]",
                        StoredReport.send_attempts < MAX_SEND_ATTEMPTS,
                    )
                )
            ).all()
        for report_id in unsent:
            if self.mailer is None and report_id not in {r.id for r in written}:
                continue  # recorded once as not configured; nothing changes until it is
            await self.send(report_id)
        await self.purge()
        return written

    async def purge(self) -> int:
        """Delete the stored reports older than ``keep_days`` (rows and files)."""
        keep = self.settings.periodic_reports.keep_days
        if not keep:
            return 0
        cutoff = self.clock.now() - timedelta(days=keep)
        async with self.db.session() as s:
            old = list(
                (
                    await s.scalars(select(StoredReport).where(StoredReport.generated_at < cutoff))
                ).all()
            )
            for row in old:
                for suffix in ("xlsx", "pdf"):
                    with contextlib.suppress(FileNotFoundError):
                        self.path(row, suffix).unlink()
            if old:
                await s.execute(
                    delete(StoredReport).where(StoredReport.id.in_([r.id for r in old]))
                )
        return len(old)

    # -- reading ------------------------------------------------------------------

    async def find(self, kind: str, start: date) -> StoredReport | None:
        async with self.db.session() as s:
            return await s.scalar(
                select(StoredReport).where(
                    StoredReport.kind == kind, StoredReport.period_start == start
                )
            )

    async def get(self, report_id: int) -> StoredReport:
        async with self.db.session() as s:
            row = await s.get(StoredReport, report_id)
        if row is None:
            raise LookupError(f"no stored report {report_id}")
        return row

    async def listing(self, limit: int = 200) -> list[StoredReport]:
        """The stored reports, newest period first."""
        async with self.db.session() as s:
            return list(
                (
                    await s.scalars(
                        select(StoredReport)
                        .order_by(StoredReport.period_start.desc(), StoredReport.kind)
                        .limit(limit)
                    )
                ).all()
            )

    def path(self, row: StoredReport, suffix: str) -> Path:
        return self.directory / f"{row.file_stem}.{suffix}"

    def _read(self, row: StoredReport, suffix: str) -> bytes:
        return self.path(row, suffix).read_bytes()


def _mail_text(row: StoredReport, title: str) -> str:
    last = row.period_end - timedelta(days=1)
    if row.language == "en":
        return (
            f"{title} ({row.period_start:%d/%m/%Y} – {last:%d/%m/%Y}) of the citizen hotline, "
            "attached as a spreadsheet (XLSX) and a PDF.\n"
        )
    return (
        f"{title} ({row.period_start:%d/%m/%Y} – {last:%d/%m/%Y}) của đường dây nóng, "
        "đính kèm dạng bảng tính (XLSX) và PDF.\n"
    )


class PeriodicReportWatch:
    """Runs :meth:`PeriodicReports.run_due` every ``check_seconds`` (when enabled)."""

    def __init__(self, reports: PeriodicReports, interval: float) -> None:
        self.reports = reports
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="periodic-reports")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.reports.run_due()
            except Exception:  # noqa: BLE001 - a failure must not end the schedule
                log.exception("periodic reports failed; trying again in %s s", self.interval)
            await asyncio.sleep(self.interval)
