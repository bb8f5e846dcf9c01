"""Recordings as evidence: one row per finalised recording (hash chain), access audit, share links.

Share links are signed (HMAC) and need no table; their creation and every use are in the audit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_LOG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(name: str, *values: str, length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("session_type", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("container", sa.String(length=8), nullable=False),
        sa.Column("codecs", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_digest", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("status", _enum("recording_status", "complete", "purged", "superseded"), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("seq", name=op.f("uq_recordings_seq")),
        sa.UniqueConstraint("job_id", name=op.f("uq_recordings_job_id")),
        sa.UniqueConstraint("digest", name=op.f("uq_recordings_digest")),
    )
    op.create_index(op.f("ix_recordings_call_id"), "recordings", ["call_id"])
    op.create_index(op.f("ix_recordings_room_id"), "recordings", ["room_id"])
    op.create_index(op.f("ix_recordings_case_id"), "recordings", ["case_id"])
    op.create_index(op.f("ix_recordings_organisation_id"), "recordings", ["organisation_id"])
    op.create_index("ix_recordings_session_type_session_id", "recordings", ["session_type", "session_id"])
    op.create_index("ix_recordings_started_at", "recordings", ["started_at"])

    op.create_table(
        "recording_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recordings.id"],
            name=op.f("fk_recording_participants_recording_id_recordings"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_participants")),
    )
    op.create_index(op.f("ix_recording_participants_recording_id"), "recording_participants", ["recording_id"])
    op.create_index(op.f("ix_recording_participants_user_id"), "recording_participants", ["user_id"])
    op.create_index(op.f("ix_recording_participants_number"), "recording_participants", ["number"])

    op.create_table(
        "recording_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("session_type", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_ref", sa.String(length=500), nullable=False),
        sa.Column("state", _enum("recording_job_state", "queued", "encoding", "encoded", "verified", "recorded",
                                 "done", "skipped", "failed"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("output_path", sa.String(length=500), nullable=True),
        sa.Column("recording_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_jobs")),
        sa.UniqueConstraint("key", name=op.f("uq_recording_jobs_key")),
    )
    op.create_index("ix_recording_jobs_state_not_before", "recording_jobs", ["state", "not_before"])

    op.create_table(
        "recording_audit",
        sa.Column("id", _LOG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_audit")),
    )
    op.create_index(op.f("ix_recording_audit_at"), "recording_audit", ["at"])
    op.create_index(op.f("ix_recording_audit_user_id"), "recording_audit", ["user_id"])
    op.create_index("ix_recording_audit_recording_id_at", "recording_audit", ["recording_id", "at"])


def downgrade() -> None:
    op.drop_table("recording_audit")
    op.drop_table("recording_jobs")
    op.drop_table("recording_participants")
    op.drop_table("recordings")
