"""Simulation files in the database, so that every replica serves them (api/simulations/files.py).

Revision ID: 0007_simulation_files
Revises: h16acc_0006_accounts
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_simulation_files"
down_revision = "h16acc_0006_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # LargeBinary: bytea on PostgreSQL, a blob on SQLite.
    op.create_table(
        "simulation_files",
        sa.Column("simulation_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("part", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("simulation_files")
