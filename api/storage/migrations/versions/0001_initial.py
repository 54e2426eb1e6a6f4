"""Initial schema: API keys, determinations, batches.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
    )
    op.create_table(
        "determinations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("household_id", sa.String(128), nullable=False),
        sa.Column("locality", sa.String(6), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("ruleset_version", sa.String(80), nullable=False),
        sa.Column("caller_key_id", sa.String(32), nullable=False),
        sa.Column("caller_name", sa.String(200), nullable=False),
        sa.Column("caller_role", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=True),
        sa.Column("batch_index", sa.Integer(), nullable=True),
        sa.Column("input_json", sa.Text(), nullable=False),
        sa.Column("output_zlib", sa.LargeBinary(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_determinations_household", "determinations", ["household_id", "id"])
    op.create_index("ix_determinations_created_at", "determinations", ["created_at"])
    op.create_index("ix_determinations_batch", "determinations", ["batch_id", "batch_index"])
    op.create_index("uq_determinations_idempotency", "determinations", ["caller_key_id", "idempotency_key"], unique=True)
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("caller_key_id", sa.String(32), nullable=False),
        sa.Column("caller_name", sa.String(200), nullable=False),
        sa.Column("caller_role", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("refused_json", sa.Text(), nullable=False),
    )
    op.create_index("uq_batches_idempotency", "batches", ["caller_key_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_table("batches")
    op.drop_table("determinations")
    op.drop_table("api_keys")
