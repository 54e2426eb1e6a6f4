"""Tables (SQLModel). Schema changes go through ``api/storage/migrations`` (Alembic), never ``create_all``.

JSON documents are stored as written by orjson: the same bytes on SQLite and
PostgreSQL, and no second serialisation on the hot path.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, DateTime, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel


def _ts(**kw) -> Column:
    return Column(DateTime(timezone=True), **kw)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    prefix: str = Field(max_length=16)  # shown in listings so people can tell keys apart; not secret
    secret_hash: str = Field(max_length=64, unique=True)  # sha256 of the whole key
    # The division code whose subtree the key may see and act for (auth.Scope); 100000 = 全国.
    locality: str = Field(default="100000", max_length=6)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class DeterminationRecord(SQLModel, table=True):
    __tablename__ = "determinations"
    __table_args__ = (
        Index("ix_determinations_household", "household_id", "id"),
        Index("uq_determinations_idempotency", "caller_key_id", "idempotency_key", unique=True),
        Index("ix_determinations_batch", "batch_id", "batch_index"),
        Index("ix_determinations_household_key", "household_key", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7: ordered by time
    household_id: str = Field(max_length=128)  # ID numbers in it masked
    # HMAC of the household_id when it holds an ID number (api/storage/id_secret.py): two ids that mask
    # alike keep two histories. None for other ids, looked up by household_id.
    household_key: str | None = Field(default=None, max_length=64)
    locality: str = Field(max_length=6)
    as_of: dt.date
    ruleset_version: str = Field(max_length=80)
    caller_key_id: str = Field(max_length=32)
    caller_name: str = Field(max_length=200)
    caller_role: str = Field(max_length=16)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False, index=True))
    idempotency_key: str | None = Field(default=None, max_length=255)  # its keyed hash, never the key
    request_hash: str = Field(max_length=64)
    batch_id: str | None = Field(default=None, max_length=36)
    batch_index: int | None = None
    input_json: str = Field(sa_column=Column(Text, nullable=False))  # ID numbers masked
    # The determination JSON, zlib-compressed: ~22 kB of explanations shrink to ~4 kB, which is most
    # of the writer's work per request and of the file's growth. Read it with ``records.output_of``.
    output_zlib: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    summary_json: str = Field(sa_column=Column(Text, nullable=False))  # program, members, status, amount


class BatchRecord(SQLModel, table=True):
    __tablename__ = "batches"
    __table_args__ = (Index("uq_batches_idempotency", "caller_key_id", "idempotency_key", unique=True),)

    id: str = Field(primary_key=True, max_length=36)
    caller_key_id: str = Field(max_length=32)
    caller_name: str = Field(max_length=200)
    caller_role: str = Field(max_length=16)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str = Field(max_length=64)
    count: int
    answered: int
    refused_json: str = Field(sa_column=Column(Text, nullable=False))  # {"index": [errors]} of refused households


class DeploymentSecret(SQLModel, table=True):
    """Secrets made on first start and shared by every replica on this database (``api/storage/id_secret.py``)."""

    __tablename__ = "deployment_secrets"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=128)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))


class SimulationJob(SQLModel, table=True):
    """A reform simulation (POST /v1/simulations): queued, run by one worker process, its result kept."""

    __tablename__ = "simulations"
    __table_args__ = (
        Index("ix_simulations_status", "status", "id"),
        Index("uq_simulations_idempotency", "caller_key_id", "idempotency_key", unique=True),
    )

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7: ordered by submission time
    status: str = Field(max_length=16)  # queued | running | done | failed
    population: str = Field(max_length=64)  # a name under the configured populations directory
    as_of: dt.date | None = None
    reform_name: str = Field(max_length=200)
    reform_yaml: str = Field(sa_column=Column(Text, nullable=False))  # the reform file that runs
    rules_json: str = Field(sa_column=Column(Text, nullable=False))  # {"dibao_edge.yaml": "<rule file text>"}
    reform_info_json: str = Field(sa_column=Column(Text, nullable=False))  # name, description, changes, rules
    caller_key_id: str = Field(max_length=32)
    caller_name: str = Field(max_length=200)
    caller_role: str = Field(max_length=16)
    caller_scope: str = Field(default="100000", max_length=6)  # the submitter's scope: who else may read the job
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    started_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    finished_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    heartbeat_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    attempts: int = 0
    runner: str | None = Field(default=None, max_length=128)  # host:pid of the worker running it
    households_total: int | None = None  # when cheap to know before the run (Parquet metadata)
    households_done: int | None = None
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    files_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # {"report.html": bytes}
    errors_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SimulationFile(SQLModel, table=True):
    """A part of a finished simulation's file (``JIUZHU_SIMULATION_STORE=db``, api/simulations/files.py):
    files are cut into parts so that neither storing nor serving one holds it whole in memory."""

    __tablename__ = "simulation_files"

    simulation_id: str = Field(primary_key=True, max_length=36)
    name: str = Field(primary_key=True, max_length=64)  # one of api.simulations.child.OUTPUT_FILES
    part: int = Field(primary_key=True)  # 0, 1, ...: the file is their bytes in this order
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# -- dynamic monitoring (engine/monitor, api/monitoring/service.py) ------------------------------------------


class MonitoredHousehold(SQLModel, table=True):
    """A household under monitoring: its current record, last determination (summary) and monitor state."""

    __tablename__ = "monitor_households"
    __table_args__ = (Index("ix_monitor_households_locality", "locality", "household_id"),)

    household_id: str = Field(primary_key=True, max_length=128)
    locality: str = Field(max_length=6)
    seq: int  # events applied so far
    record_json: str = Field(sa_column=Column(Text, nullable=False))  # docs/contract.md household, no ID numbers
    summary_json: str = Field(sa_column=Column(Text, nullable=False))  # the last determination, per program
    meta_json: str = Field(sa_column=Column(Text, nullable=False))  # registered, last review, 渐退 start, figures
    ruleset_version: str = Field(max_length=80)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    updated_at: dt.datetime = Field(sa_column=_ts(nullable=False))


class MonitorEventRecord(SQLModel, table=True):
    """An accepted event. ``ops_json`` is what it did to the household's durable-rules session,
    replayed to rebuild the session after a restart."""

    __tablename__ = "monitor_events"
    __table_args__ = (
        Index("uq_monitor_events_key", "household_id", "event_key", unique=True),
        Index("uq_monitor_events_seq", "household_id", "seq", unique=True),
    )

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7
    household_id: str = Field(max_length=128)
    seq: int
    event_key: str = Field(max_length=160)  # the sender's event_id, or household_id:seq
    type: str = Field(max_length=32)
    date: dt.date
    member_id: str | None = Field(default=None, max_length=64)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))  # as received, ID numbers masked
    ops_json: str = Field(sa_column=Column(Text, nullable=False))
    evaluated: bool
    caller_key_id: str = Field(max_length=32)
    caller_name: str = Field(max_length=200)
    received_at: dt.datetime = Field(sa_column=_ts(nullable=False))


class AlertRecord(SQLModel, table=True):
    """An alert raised by a monitoring rule; ``key`` is its natural idempotency key."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("uq_alerts_key", "key", unique=True),
        Index("ix_alerts_locality_status", "locality", "status", "id"),
        Index("ix_alerts_status", "status", "id"),
        Index("ix_alerts_household", "household_id", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7
    key: str = Field(max_length=64)  # sha256 of household | rule | the facts it matched
    household_id: str = Field(max_length=128)
    locality: str = Field(max_length=6)
    rule: str = Field(max_length=64)
    level: str = Field(max_length=8)  # red | orange | yellow
    title: str = Field(max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    citation: str = Field(sa_column=Column(Text, nullable=False))
    member_id: str | None = Field(default=None, max_length=64)
    event_key: str = Field(max_length=160)
    event_type: str = Field(max_length=32)
    event_date: dt.date
    determinations_json: str = Field(sa_column=Column(Text, nullable=False))  # the determinations compared
    status: str = Field(max_length=16)  # open | acknowledged | closed
    notes_json: str = Field(sa_column=Column(Text, nullable=False))  # [{status, note, by, at}]
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    updated_at: dt.datetime = Field(sa_column=_ts(nullable=False))
