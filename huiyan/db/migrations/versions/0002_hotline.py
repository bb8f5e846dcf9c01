"""The 12348 hotline: queues, voice menus, agent skills and memberships, agent state, queue log, calls.

Revision ID: 0002
Revises: 0001
Create Date: 2024-06-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

QUEUE_EVENTS = (
    "enqueue", "refuse", "offer", "connect", "noanswer", "abandon", "transfer", "complete", "overflow", "timeout",
    "pause", "unpause", "login", "logout", "wrapup_end",
)  # fmt: skip
CALL_OUTCOMES = (
    "waiting", "ringing", "answered", "abandoned", "timeout", "overflowed", "transferred", "failed", "completed",
)  # fmt: skip


def _enum(name: str, *values: str, length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column(
            "strategy",
            _enum("queue_strategy", "longest-idle", "fewest-calls", "round-robin", "ring-all", "skills"),
            nullable=False,
        ),
        sa.Column("ring_timeout_s", sa.Integer(), nullable=False),
        sa.Column("wrapup_s", sa.Integer(), nullable=False),
        sa.Column("max_wait_s", sa.Integer(), nullable=True),
        sa.Column("overflow_queue_id", sa.Integer(), nullable=True),
        sa.Column(
            "join_empty",
            _enum("join_empty_policy", "join", "refuse_no_agents", "refuse_none_available", length=24),
            nullable=False,
        ),
        sa.Column("sl_threshold_s", sa.Integer(), nullable=False),
        sa.Column("sl_target", sa.Float(), nullable=False),
        sa.Column("autopause_after", sa.Integer(), nullable=False),
        sa.Column("relax_steps", sa.JSON(), nullable=False),
        sa.Column("announce_every_s", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_queues_organisation_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["overflow_queue_id"],
            ["queues.id"],
            name=op.f("fk_queues_overflow_queue_id_queues"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
        sa.UniqueConstraint("name", name=op.f("uq_queues_name")),
    )
    op.create_index(op.f("ix_queues_organisation_id"), "queues", ["organisation_id"])
    op.create_index(op.f("ix_queues_overflow_queue_id"), "queues", ["overflow_queue_id"])

    op.create_table(
        "menu_options",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_number", sa.String(length=16), nullable=False),
        sa.Column("digit", sa.String(length=1), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("required_skills", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("label_zh", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=200), nullable=False),
        sa.Column("prompt", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_menu_options_queue_id_queues"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_menu_options")),
        sa.UniqueConstraint("service_number", "digit", name=op.f("uq_menu_options_service_number")),
    )
    op.create_index(op.f("ix_menu_options_queue_id"), "menu_options", ["queue_id"])

    op.create_table(
        "agent_skills",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("skill", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_skills_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "skill", name=op.f("pk_agent_skills")),
    )

    op.create_table(
        "queue_members",
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("penalty", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_queue_members_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_queue_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("queue_id", "user_id", name=op.f("pk_queue_members")),
    )
    op.create_index(op.f("ix_queue_members_user_id"), "queue_members", ["user_id"])

    op.create_table(
        "agent_statuses",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            _enum("agent_state", "logged_out", "available", "offered", "on_call", "wrap_up", "paused"),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("logged_in_queues", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_statuses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_statuses")),
    )

    op.create_table(
        "queue_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column(
            "event",
            _enum("queue_event", *QUEUE_EVENTS),
            nullable=False,
        ),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_log")),
    )
    op.create_index("ix_queue_log_at", "queue_log", ["at"])
    op.create_index("ix_queue_log_queue_id_at", "queue_log", ["queue_id", "at"])
    op.create_index("ix_queue_log_agent_user_id_at", "queue_log", ["agent_user_id", "at"])
    op.create_index("ix_queue_log_call_id", "queue_log", ["call_id"])

    op.create_table(
        "hotline_calls",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=True),
        sa.Column("caller_number", sa.String(length=32), nullable=True),
        sa.Column("caller_name", sa.String(length=100), nullable=True),
        sa.Column("service_number", sa.String(length=16), nullable=True),
        sa.Column("menu_digit", sa.String(length=1), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offered_count", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            _enum("call_outcome", *CALL_OUTCOMES),
            nullable=False,
        ),
        sa.Column("wait_s", sa.Float(), nullable=True),
        sa.Column("talk_s", sa.Float(), nullable=True),
        sa.Column("recording_path", sa.String(length=500), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_calls")),
    )
    op.create_index(op.f("ix_hotline_calls_linkedid"), "hotline_calls", ["linkedid"])
    op.create_index(op.f("ix_hotline_calls_agent_user_id"), "hotline_calls", ["agent_user_id"])
    op.create_index(op.f("ix_hotline_calls_created_at"), "hotline_calls", ["created_at"])
    op.create_index("ix_hotline_calls_queue_id_created_at", "hotline_calls", ["queue_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_hotline_calls_queue_id_created_at", table_name="hotline_calls")
    op.drop_index(op.f("ix_hotline_calls_created_at"), table_name="hotline_calls")
    op.drop_index(op.f("ix_hotline_calls_agent_user_id"), table_name="hotline_calls")
    op.drop_index(op.f("ix_hotline_calls_linkedid"), table_name="hotline_calls")
    op.drop_table("hotline_calls")
    op.drop_index("ix_queue_log_call_id", table_name="queue_log")
    op.drop_index("ix_queue_log_agent_user_id_at", table_name="queue_log")
    op.drop_index("ix_queue_log_queue_id_at", table_name="queue_log")
    op.drop_index("ix_queue_log_at", table_name="queue_log")
    op.drop_table("queue_log")
    op.drop_table("agent_statuses")
    op.drop_index(op.f("ix_queue_members_user_id"), table_name="queue_members")
    op.drop_table("queue_members")
    op.drop_table("agent_skills")
    op.drop_index(op.f("ix_menu_options_queue_id"), table_name="menu_options")
    op.drop_table("menu_options")
    op.drop_index(op.f("ix_queues_overflow_queue_id"), table_name="queues")
    op.drop_index(op.f("ix_queues_organisation_id"), table_name="queues")
    op.drop_table("queues")
