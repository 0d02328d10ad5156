"""The README's diagram of the ticket states is the one drawn from tickets/workflow.py.

tools/workflow_diagram.py draws it from TRANSITIONS, LEADS_TO and STARTS_IN; a change
to the workflow that is not redrawn in the README (or, before the merge, in
docs-pending/) fails here, and so does an action with no outcome declared.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from tickets.models import Status
from tickets.service import TicketService
from tickets.workflow import LEADS_TO, STARTS_IN, TRANSITIONS

ROOT = Path(__file__).resolve().parents[2]


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "workflow_diagram", ROOT / "tools" / "workflow_diagram.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs-pending").glob("*.md"))]


def test_the_diagram_in_the_docs_is_the_one_the_table_draws():
    tool = _tool()
    marked = [p for p in _documents() if p.exists() and tool.BEGIN in p.read_text("utf-8")]
    assert marked, "no document holds the ticket-states diagram"
    assert tool.check(marked) == []


def test_a_changed_table_is_caught(monkeypatch, tmp_path):
    tool = _tool()
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{tool.BEGIN}\n{tool.diagram()}{tool.END}\n", encoding="utf-8")
    assert tool.check([doc]) == []
    # a new way out of "answered" that the drawing does not have yet
    monkeypatch.setitem(LEADS_TO, "accept", (Status.ACCEPTED, Status.CLOSED))
    assert tool.check([doc]) != []
    assert "accepted" in tool.diagram() and "forwarded --> closed : accept" in tool.diagram()


def test_every_action_declares_where_it_leads():
    assert set(LEADS_TO) == set(TRANSITIONS)
    assert set(STARTS_IN) == {1, 2, 3, 4, 5}


def test_a_new_ticket_starts_where_the_table_says():
    """The service's own start (by level, with and without an agency) is in STARTS_IN."""
    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    fake = SimpleNamespace(_deadline=lambda level, at: at)
    seen: dict[int, set[Status]] = {}
    for level in range(1, 6):
        for agency_id in (None, 7):
            form = SimpleNamespace(level=level, agency_id=agency_id)
            status = TicketService._start(fake, form, now)[0]  # type: ignore[arg-type]
            seen.setdefault(level, set()).add(status)
    assert seen == {level: set(statuses) for level, statuses in STARTS_IN.items()}
