"""Mediation: cases (parties, mediator, type, status, outcome) and their sessions (rooms).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CASE_TYPES = ("neighbour", "family", "labour", "consumer", "tourism", "other")
CASE_STATUSES = ("open", "in_session", "settled", "failed", "closed")
PARTY_ROLES = ("applicant", "respondent", "other")


def _enum(name: str, *values: str, length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def upgrade() -> None:
    op.create_table(
        "mediation_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("type", _enum("mediation_case_type", *CASE_TYPES), nullable=False),
        sa.Column("status", _enum("mediation_case_status", *CASE_STATUSES), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("mediator_id", sa.Integer(), nullable=False),
        sa.Column("pin", sa.String(length=16), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"],
            name=op.f("fk_mediation_cases_organisation_id_organisations"), ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["mediator_id"], ["users.id"], name=op.f("fk_mediation_cases_mediator_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_mediation_cases_room_id_rooms"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_mediation_cases_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_mediation_cases_number")),
        sa.UniqueConstraint("pin", name=op.f("uq_mediation_cases_pin")),
        sa.UniqueConstraint("room_id", name=op.f("uq_mediation_cases_room_id")),
    )
    op.create_index(op.f("ix_mediation_cases_status"), "mediation_cases", ["status"])
    op.create_index(op.f("ix_mediation_cases_organisation_id"), "mediation_cases", ["organisation_id"])
    op.create_index(op.f("ix_mediation_cases_mediator_id"), "mediation_cases", ["mediator_id"])

    op.create_table(
        "mediation_parties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("role", _enum("mediation_party_role", *PARTY_ROLES), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["mediation_cases.id"], name=op.f("fk_mediation_parties_case_id_mediation_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_parties")),
    )
    op.create_index(op.f("ix_mediation_parties_case_id"), "mediation_parties", ["case_id"])

    op.create_table(
        "mediation_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["mediation_cases.id"], name=op.f("fk_mediation_notes_case_id_mediation_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_mediation_notes_author_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_notes")),
    )
    op.create_index(op.f("ix_mediation_notes_case_id"), "mediation_notes", ["case_id"])

    op.create_table(
        "mediation_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["mediation_cases.id"], name=op.f("fk_mediation_sessions_case_id_mediation_cases"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_mediation_sessions_room_id_rooms"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["started_by_id"], ["users.id"], name=op.f("fk_mediation_sessions_started_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ended_by_id"], ["users.id"], name=op.f("fk_mediation_sessions_ended_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_sessions")),
    )
    op.create_index("ix_mediation_sessions_case_id_started_at", "mediation_sessions", ["case_id", "started_at"])
    op.create_index(op.f("ix_mediation_sessions_room_id"), "mediation_sessions", ["room_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_mediation_sessions_room_id"), table_name="mediation_sessions")
    op.drop_index("ix_mediation_sessions_case_id_started_at", table_name="mediation_sessions")
    op.drop_table("mediation_sessions")
    op.drop_index(op.f("ix_mediation_notes_case_id"), table_name="mediation_notes")
    op.drop_table("mediation_notes")
    op.drop_index(op.f("ix_mediation_parties_case_id"), table_name="mediation_parties")
    op.drop_table("mediation_parties")
    op.drop_index(op.f("ix_mediation_cases_mediator_id"), table_name="mediation_cases")
    op.drop_index(op.f("ix_mediation_cases_organisation_id"), table_name="mediation_cases")
    op.drop_index(op.f("ix_mediation_cases_status"), table_name="mediation_cases")
    op.drop_table("mediation_cases")
