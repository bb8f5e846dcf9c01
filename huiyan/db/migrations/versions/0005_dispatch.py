"""Dispatch: groups of organisations/terminals, dispatch operations and their legs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LEG_STATUSES = ("pending", "calling", "ringing", "answered", "joined", "left", "busy", "declined", "no_answer",
                "unreachable", "failed", "dropped", "cancelled")


def _enum(name: str, *values: str, length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def upgrade() -> None:
    op.create_table(
        "dispatch_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", _enum("dispatch_group_kind", "all_cities", "counties_of_city", "all", "custom",
                                length=24), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["organisations.id"],
                                name=op.f("fk_dispatch_groups_city_id_organisations"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_dispatch_groups_name")),
    )
    op.create_index(op.f("ix_dispatch_groups_city_id"), "dispatch_groups", ["city_id"])

    op.create_table(
        "dispatch_group_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["dispatch_groups.id"],
                                name=op.f("fk_dispatch_group_members_group_id_dispatch_groups"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_dispatch_group_members_organisation_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_dispatch_group_members_device_id_devices"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_group_members")),
    )
    op.create_index(op.f("ix_dispatch_group_members_group_id"), "dispatch_group_members", ["group_id"])
    op.create_index(op.f("ix_dispatch_group_members_organisation_id"), "dispatch_group_members",
                    ["organisation_id"])
    op.create_index(op.f("ix_dispatch_group_members_device_id"), "dispatch_group_members", ["device_id"])

    op.create_table(
        "dispatches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("commander_user_id", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("status", _enum("dispatch_status", "active", "ended"), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("retry_interval_s", sa.Float(), nullable=False),
        sa.Column("retry_on", sa.JSON(), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), nullable=False),
        sa.Column("auto_answer", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["dispatch_groups.id"],
                                name=op.f("fk_dispatches_group_id_dispatch_groups"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name=op.f("fk_dispatches_room_id_rooms"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["commander_user_id"], ["users.id"],
                                name=op.f("fk_dispatches_commander_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatches")),
    )
    op.create_index(op.f("ix_dispatches_group_id"), "dispatches", ["group_id"])
    op.create_index(op.f("ix_dispatches_room_id"), "dispatches", ["room_id"])
    op.create_index(op.f("ix_dispatches_commander_user_id"), "dispatches", ["commander_user_id"])
    op.create_index("ix_dispatches_status_started_at", "dispatches", ["status", "started_at"])

    op.create_table(
        "dispatch_legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("dispatch_leg_kind", "device", "user", "extension", "sip", "phone"), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("auto_answer", sa.Boolean(), nullable=False),
        sa.Column("status", _enum("dispatch_leg_status", *LEG_STATUSES), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=150), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dispatch_id"], ["dispatches.id"],
                                name=op.f("fk_dispatch_legs_dispatch_id_dispatches"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_legs")),
    )
    op.create_index(op.f("ix_dispatch_legs_dispatch_id"), "dispatch_legs", ["dispatch_id"])
    op.create_index(op.f("ix_dispatch_legs_channel_id"), "dispatch_legs", ["channel_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_dispatch_legs_channel_id"), table_name="dispatch_legs")
    op.drop_index(op.f("ix_dispatch_legs_dispatch_id"), table_name="dispatch_legs")
    op.drop_table("dispatch_legs")
    op.drop_index("ix_dispatches_status_started_at", table_name="dispatches")
    op.drop_index(op.f("ix_dispatches_commander_user_id"), table_name="dispatches")
    op.drop_index(op.f("ix_dispatches_room_id"), table_name="dispatches")
    op.drop_index(op.f("ix_dispatches_group_id"), table_name="dispatches")
    op.drop_table("dispatches")
    op.drop_index(op.f("ix_dispatch_group_members_device_id"), table_name="dispatch_group_members")
    op.drop_index(op.f("ix_dispatch_group_members_organisation_id"), table_name="dispatch_group_members")
    op.drop_index(op.f("ix_dispatch_group_members_group_id"), table_name="dispatch_group_members")
    op.drop_table("dispatch_group_members")
    op.drop_index(op.f("ix_dispatch_groups_city_id"), table_name="dispatch_groups")
    op.drop_table("dispatch_groups")
