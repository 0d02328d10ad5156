"""`hotline reports generate` in a real process on SQLite and PostgreSQL: it writes the
period's XLSX and PDF under <state_dir>/reports once, says where, and says why it was
not sent."""

from __future__ import annotations

import asyncio
import io

from openpyxl import load_workbook

from tests.tickets.test_kb_cli import hotline


async def test_a_period_written_by_hand_is_stored_once(database_url, tmp_path):
    args = ("reports", "generate", "--kind", "monthly", "--day", "2026-11-25", "--send")
    done = await asyncio.to_thread(hotline, tmp_path, database_url, *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "monthly report 2026-11-01 - 2026-11-30 written:"
    xlsx, pdf = (line.strip() for line in lines[1:3])
    assert xlsx.endswith("reports/hotline-monthly-2026-11-01.xlsx")
    assert pdf.endswith("reports/hotline-monthly-2026-11-01.pdf")
    with open(pdf, "rb") as f:
        assert f.read(5) == b"%PDF-"
    with open(xlsx, "rb") as f:
        wb = load_workbook(io.BytesIO(f.read()), read_only=True)
    assert wb.sheetnames[0] == "Tổng quan"
    assert lines[3] == "  not sent: no recipients"
    again = await asyncio.to_thread(hotline, tmp_path, database_url, *args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "monthly report 2026-11-01 - 2026-11-30 already stored:"
