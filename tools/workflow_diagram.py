"""Draws the ticket states as a Mermaid state diagram from the workflow's tables.

The edges are :data:`tickets.workflow.TRANSITIONS` (who may take each action from
which statuses) joined with :data:`tickets.workflow.LEADS_TO` (where it leads), and
the entry points :data:`tickets.workflow.STARTS_IN` (a new ticket's status by level).
One line per edge, its actions and their roles merged; whose tickets a grant is limited
to (its ``whose``) follows the roles, a condition beyond the status (its ``when``) is
named after them.

    .venv/bin/python tools/workflow_diagram.py            # print the diagram
    .venv/bin/python tools/workflow_diagram.py --check FILE...

``--check`` exits 1 when a file holding the markers ``<!-- ticket-states -->`` and
``<!-- /ticket-states -->`` has anything else between them than the diagram drawn
now (``tests/tickets/test_workflow_diagram.py`` runs it on the README and
``docs-pending/``).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tickets import workflow  # noqa: E402
from tickets.workflow import LEADS_TO, STARTS_IN, TRANSITIONS, always, anyones  # noqa: E402

BEGIN = "<!-- ticket-states -->"
END = "<!-- /ticket-states -->"
BLOCK = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)


def edges() -> dict[tuple[str, str], list[str]]:
    """``{(from, to): [label, ...]}``: each action's grants, expanded over its statuses."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for action, grants in TRANSITIONS.items():
        for grant in grants:
            roles = ", ".join(r.value for r in grant.roles)
            whose = "" if grant.whose is anyones else f": {grant.whose.__name__}"
            cond = "" if grant.when is always else f" if {grant.when.__name__}"
            label = f"{action} ({roles}{whose}){cond}"
            for source in grant.statuses:
                for target in LEADS_TO[action]:
                    if label not in out[(source.value, target.value)]:
                        out[(source.value, target.value)].append(label)
    return out


def diagram() -> str:
    """The Mermaid text (a fenced block), the same every time for the same tables."""
    lines = ["```mermaid", "stateDiagram-v2"]
    starts: dict[str, list[str]] = defaultdict(list)
    for level, statuses in STARTS_IN.items():
        for status in statuses:
            starts[status.value].append(str(level))
    for status, levels in starts.items():
        lines.append(f"    [*] --> {status} : create, level {'/'.join(levels)}")
    for (source, target), labels in edges().items():
        # (no ";": Mermaid reads it as the end of a statement)
        lines.append(f"    {source} --> {target} : {' | '.join(labels)}")
    unchanged = [a for a, t in LEADS_TO.items() if not t]
    if unchanged:
        lines.append(f"    note right of {workflow.Status.NEW.value}")
        lines.append(f"        {', '.join(unchanged)}: fields only, the status stays")
        lines.append("    end note")
    lines.append("```")
    return "\n".join(lines) + "\n"


def check(paths: list[Path]) -> list[str]:
    """The problems: a marked block that differs from :func:`diagram`."""
    want = diagram()
    problems = []
    for path in paths:
        for m in BLOCK.finditer(path.read_text(encoding="utf-8")):
            if m.group(1) != want:
                problems.append(
                    f"{path}: the ticket-states diagram differs from tickets/workflow.py"
                )
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        problems = check([Path(p) for p in argv[1:]])
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    sys.stdout.write(diagram())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
