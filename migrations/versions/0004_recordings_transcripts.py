"""transcripts, transcript segments with full-text search, transcription jobs

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcripts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segments_json", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("audio_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_transcripts_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcripts")),
    )
    with op.batch_alter_table("transcripts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transcripts_call_id"), ["call_id"], unique=True)

    op.create_table(
        "transcript_segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("end", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_transcript_segments_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_segments")),
    )
    with op.batch_alter_table("transcript_segments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transcript_segments_call_id"), ["call_id"], unique=False
        )

    op.create_table(
        "transcription_jobs",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_transcription_jobs_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_transcription_jobs")),
    )
    with op.batch_alter_table("transcription_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transcription_jobs_status"), ["status"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # 'simple': no stemming (Vietnamese has none); search_text is already
        # NFC and case-folded by the application, so diacritics match exactly.
        op.execute(
            "CREATE INDEX ix_transcript_segments_fts ON transcript_segments "
            "USING GIN (to_tsvector('simple', search_text))"
        )
    else:
        # An external-content FTS5 index over search_text, kept in step by
        # triggers; diacritics are kept (ma, mà, má, mả are different words).
        op.execute(
            "CREATE VIRTUAL TABLE transcript_segments_fts USING fts5("
            "search_text, content='transcript_segments', content_rowid='id', "
            "tokenize='unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER transcript_segments_fts_ai AFTER INSERT ON transcript_segments "
            "BEGIN INSERT INTO transcript_segments_fts(rowid, search_text) "
            "VALUES (new.id, new.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER transcript_segments_fts_ad AFTER DELETE ON transcript_segments "
            "BEGIN INSERT INTO transcript_segments_fts(transcript_segments_fts, rowid, "
            "search_text) VALUES ('delete', old.id, old.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER transcript_segments_fts_au AFTER UPDATE ON transcript_segments "
            "BEGIN INSERT INTO transcript_segments_fts(transcript_segments_fts, rowid, "
            "search_text) VALUES ('delete', old.id, old.search_text); "
            "INSERT INTO transcript_segments_fts(rowid, search_text) "
            "VALUES (new.id, new.search_text); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_transcript_segments_fts")
    else:
        for t in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS transcript_segments_fts_{t}")
        op.execute("DROP TABLE IF EXISTS transcript_segments_fts")
    with op.batch_alter_table("transcription_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcription_jobs_status"))
    op.drop_table("transcription_jobs")
    with op.batch_alter_table("transcript_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcript_segments_call_id"))
    op.drop_table("transcript_segments")
    with op.batch_alter_table("transcripts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcripts_call_id"))
    op.drop_table("transcripts")
