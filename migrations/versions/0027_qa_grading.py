"""qa: quality grading of recorded calls

Revision ID: 0027
Revises: 0026

Scorecards and their versions (a grade keeps the version it used), the weekly
draws stored whole (seed, pool, calls left out, picks) so they can be run again
and compared, the graders' work list (a call at most once), grades with the
agent's dispute, and comments at moments of a recording.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "qa_scorecards",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "qa_scorecard_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scorecard_id", sa.Integer, sa.ForeignKey("qa_scorecards.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("criteria", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("scorecard_id", "version"),
    )
    op.create_index(
        "ix_qa_scorecard_versions_scorecard_id", "qa_scorecard_versions", ["scorecard_id"]
    )
    op.create_table(
        "qa_draws",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("week", sa.Date, nullable=False, unique=True),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("calls_per_agent", sa.Integer, nullable=False),
        sa.Column("pool", sa.Text, nullable=False),
        sa.Column("excluded", sa.Text, nullable=False),
        sa.Column("picked", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "qa_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id"), nullable=False, unique=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("draw_id", sa.Integer, sa.ForeignKey("qa_draws.id"), nullable=True),
        sa.Column("agent_extension", sa.String(16), nullable=True),
        sa.Column("shift_id", sa.String(32), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("added_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_qa_samples_draw_id", "qa_samples", ["draw_id"])
    op.create_index("ix_qa_samples_agent_extension", "qa_samples", ["agent_extension"])
    op.create_index("ix_qa_samples_added_at", "qa_samples", ["added_at"])
    op.create_table(
        "qa_grades",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id"), nullable=False),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("qa_scorecard_versions.id"), nullable=False
        ),
        sa.Column("grader_id", sa.Integer, nullable=True),
        sa.Column("grader_name", sa.String(200), nullable=False),
        sa.Column("agent_extension", sa.String(16), nullable=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("shift_id", sa.String(32), nullable=True),
        sa.Column("call_started_at", TS, nullable=False),
        sa.Column("marks", sa.Text, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("fatal", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("graded_at", TS, nullable=False),
        sa.Column("dispute_state", sa.String(16), nullable=True),
        sa.Column("dispute_reason", sa.Text, nullable=True),
        sa.Column("disputed_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("original_score", sa.Float, nullable=True),
        sa.UniqueConstraint("call_id", "grader_id"),
    )
    op.create_index("ix_qa_grades_call_id", "qa_grades", ["call_id"])
    op.create_index("ix_qa_grades_agent_extension", "qa_grades", ["agent_extension"])
    op.create_index("ix_qa_grades_call_started_at", "qa_grades", ["call_started_at"])
    op.create_table(
        "qa_comments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("at_seconds", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("author_id", sa.Integer, nullable=True),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_qa_comments_call_id", "qa_comments", ["call_id"])


def downgrade() -> None:
    op.drop_table("qa_comments")
    op.drop_table("qa_grades")
    op.drop_table("qa_samples")
    op.drop_table("qa_draws")
    op.drop_table("qa_scorecard_versions")
    op.drop_table("qa_scorecards")
