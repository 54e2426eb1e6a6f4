"""Reform simulation jobs (POST /v1/simulations).

Revision ID: 0003_simulations
Revises: 0002_monitoring
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_simulations"
down_revision = "0002_monitoring"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "simulations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("population", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("reform_name", sa.String(200), nullable=False),
        sa.Column("reform_yaml", sa.Text(), nullable=False),
        sa.Column("rules_json", sa.Text(), nullable=False),
        sa.Column("reform_info_json", sa.Text(), nullable=False),
        sa.Column("caller_key_id", sa.String(32), nullable=False),
        sa.Column("caller_name", sa.String(200), nullable=False),
        sa.Column("caller_role", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("heartbeat_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("runner", sa.String(128), nullable=True),
        sa.Column("households_total", sa.Integer(), nullable=True),
        sa.Column("households_done", sa.Integer(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("files_json", sa.Text(), nullable=True),
        sa.Column("errors_json", sa.Text(), nullable=True),
    )
    op.create_index("ix_simulations_status", "simulations", ["status", "id"])
    op.create_index("uq_simulations_idempotency", "simulations", ["caller_key_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_table("simulations")
