"""indexes for the queue figures, reports and metrics

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, columns)
INDEXES = [
    # membership of agents in queues at a moment (occupancy): the last
    # ADDMEMBER/REMOVEMEMBER before it per queue and agent, without reading
    # every call's events
    ("ix_queue_events_event_queue_agent_at", "queue_events", ["event", "queue", "agent", "at"]),
    # agencies' timeliness: tickets forwarded in a period
    ("ix_tickets_forwarded_at", "tickets", ["forwarded_at"]),
    # when each ticket was answered
    ("ix_ticket_events_ticket_to_status", "ticket_events", ["ticket_id", "to_status", "at"]),
    # the /metrics counters: calls per queue and outcome, from the index alone
    ("ix_calls_queue_outcome", "calls", ["queue", "outcome"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
