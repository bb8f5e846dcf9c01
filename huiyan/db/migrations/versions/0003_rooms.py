"""Rooms: conference rooms (permanent and scheduled), their moderators and invitees, sessions, recordings.

Revision ID: 0003
Revises: 0002
Create Date: 2024-07-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str, length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", _enum("room_kind", "meeting", "mediation", "dispatch", "education"), nullable=False),
        sa.Column("video_mode", _enum("room_video_mode", "sfu", "follow_talker", "presenter"), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pin", sa.String(length=16), nullable=True),
        sa.Column("moderator_pin", sa.String(length=16), nullable=True),
        sa.Column("max_participants", sa.Integer(), nullable=False),
        sa.Column("record", sa.Boolean(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_rooms_organisation_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
        sa.UniqueConstraint("number", name=op.f("uq_rooms_number")),
    )
    op.create_index(op.f("ix_rooms_organisation_id"), "rooms", ["organisation_id"])

    op.create_table(
        "room_moderators",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_room_moderators_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_room_moderators_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_room_moderators")),
    )
    op.create_index(op.f("ix_room_moderators_user_id"), "room_moderators", ["user_id"])

    op.create_table(
        "room_invitees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("moderator", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_room_invitees_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_invitees")),
        sa.UniqueConstraint("room_id", "target", name=op.f("uq_room_invitees_room_id")),
    )
    op.create_index(op.f("ix_room_invitees_room_id"), "room_invitees", ["room_id"])

    op.create_table(
        "room_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("bridge_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("peak_participants", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_room_sessions_room_id_rooms"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_sessions")),
    )
    op.create_index("ix_room_sessions_room_id_started_at", "room_sessions", ["room_id", "started_at"])

    op.create_table(
        "room_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_room_recordings_room_id_rooms"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["room_sessions.id"],
            name=op.f("fk_room_recordings_session_id_room_sessions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_recordings")),
    )
    op.create_index(op.f("ix_room_recordings_room_id"), "room_recordings", ["room_id"])
    op.create_index(op.f("ix_room_recordings_session_id"), "room_recordings", ["session_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_room_recordings_session_id"), table_name="room_recordings")
    op.drop_index(op.f("ix_room_recordings_room_id"), table_name="room_recordings")
    op.drop_table("room_recordings")
    op.drop_index("ix_room_sessions_room_id_started_at", table_name="room_sessions")
    op.drop_table("room_sessions")
    op.drop_index(op.f("ix_room_invitees_room_id"), table_name="room_invitees")
    op.drop_table("room_invitees")
    op.drop_index(op.f("ix_room_moderators_user_id"), table_name="room_moderators")
    op.drop_table("room_moderators")
    op.drop_index(op.f("ix_rooms_organisation_id"), table_name="rooms")
    op.drop_table("rooms")
