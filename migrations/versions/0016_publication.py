"""publication: the citizen's consent, an admin's withholding, a contact email, the district

Revision ID: 0016
Revises: 0015

The public portal lists completed reports whose citizen agreed to publication
(``publish_consent``, asked on the call or on the web form) and that no admin
withheld (``withheld``); tickets.publication holds the rule.  ``reporter_email``
is where a citizen who reported on the web or by email hears back.
``district`` is the district the report is about (a code of the agency
directory's district, or free text from the form), for the portal's filter
and the leaders' reports.  Every existing ticket stays unpublished.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.add_column(
            sa.Column("publish_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        t.add_column(sa.Column("withheld", sa.Boolean(), nullable=False, server_default=sa.false()))
        t.add_column(sa.Column("reporter_email", sa.String(length=200), nullable=True))
        t.add_column(sa.Column("district", sa.String(length=80), nullable=True))
    op.create_index("ix_tickets_district", "tickets", ["district"])
    # the portal: completed reports, newest closed first
    op.create_index("ix_tickets_portal", "tickets", ["status", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_portal", table_name="tickets")
    op.drop_index("ix_tickets_district", table_name="tickets")
    with op.batch_alter_table("tickets") as t:
        t.drop_column("district")
        t.drop_column("reporter_email")
        t.drop_column("withheld")
        t.drop_column("publish_consent")
