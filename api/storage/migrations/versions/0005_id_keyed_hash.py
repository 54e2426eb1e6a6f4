"""Keyed hashes next to masked resident ID numbers, and the per-deployment secret that keys them.

``determinations.household_key``: HMAC of a household_id that holds an ID number, so that
two such ids that mask alike keep two histories. Rows written before this revision have
none (their household_id was stored masked: the id cannot be recovered to hash it); their
history is no longer found under an ID-number household_id.

Revision ID: 0005_id_keyed_hash
Revises: 0003_simulations
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_id_keyed_hash"
down_revision = "0004_key_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("determinations") as t:
        t.add_column(sa.Column("household_key", sa.String(64), nullable=True))
    op.create_index("ix_determinations_household_key", "determinations", ["household_key", "id"])
    op.create_table(
        "deployment_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deployment_secrets")
    op.drop_index("ix_determinations_household_key", "determinations")
    with op.batch_alter_table("determinations") as t:
        t.drop_column("household_key")
