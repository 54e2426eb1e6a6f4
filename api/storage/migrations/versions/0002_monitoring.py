"""Dynamic monitoring: monitored households, their events, alerts.

Revision ID: 0002_monitoring
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_monitoring"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "monitor_households",
        sa.Column("household_id", sa.String(128), primary_key=True),
        sa.Column("locality", sa.String(6), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("meta_json", sa.Text(), nullable=False),
        sa.Column("ruleset_version", sa.String(80), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_monitor_households_locality", "monitor_households", ["locality", "household_id"])
    op.create_table(
        "monitor_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("household_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(160), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=True),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("ops_json", sa.Text(), nullable=False),
        sa.Column("evaluated", sa.Boolean(), nullable=False),
        sa.Column("caller_key_id", sa.String(32), nullable=False),
        sa.Column("caller_name", sa.String(200), nullable=False),
        _ts("received_at"),
    )
    op.create_index("uq_monitor_events_key", "monitor_events", ["household_id", "event_key"], unique=True)
    op.create_index("uq_monitor_events_seq", "monitor_events", ["household_id", "seq"], unique=True)
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("household_id", sa.String(128), nullable=False),
        sa.Column("locality", sa.String(6), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("citation", sa.Text(), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=True),
        sa.Column("event_key", sa.String(160), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("determinations_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notes_json", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("uq_alerts_key", "alerts", ["key"], unique=True)
    op.create_index("ix_alerts_locality_status", "alerts", ["locality", "status", "id"])
    op.create_index("ix_alerts_status", "alerts", ["status", "id"])
    op.create_index("ix_alerts_household", "alerts", ["household_id", "id"])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("monitor_events")
    op.drop_table("monitor_households")
