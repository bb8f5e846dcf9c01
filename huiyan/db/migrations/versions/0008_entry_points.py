"""QR entry points: a poster's code opens the citizen page preset to one service (number + menu option).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entry_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("service_number", sa.String(length=16), nullable=False),
        sa.Column("menu_digit", sa.String(length=1), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("instructions", sa.String(length=500), nullable=False),
        sa.Column("instructions_en", sa.String(length=1000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_entry_points_organisation_id_organisations"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_entry_points_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_points")),
        sa.UniqueConstraint("slug", name=op.f("uq_entry_points_slug")),
    )
    with op.batch_alter_table("entry_points") as batch:
        batch.create_index(batch.f("ix_entry_points_organisation_id"), ["organisation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("entry_points") as batch:
        batch.drop_index(batch.f("ix_entry_points_organisation_id"))
    op.drop_table("entry_points")
