"""Storage of reform simulation jobs: every read and write of the ``simulations`` table.

Blocking calls (SQLAlchemy), run from a thread pool or a job runner thread. A job
goes queued -> running -> done | failed. Claiming the next job, counting the jobs
running in every worker process and recovering jobs whose runner went silent all
happen in one serialised transaction (BEGIN IMMEDIATE on SQLite, an advisory lock on
PostgreSQL), so the concurrency bound holds across processes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import orjson
from sqlalchemy import Connection, Engine, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from api.core.errors import error_item
from api.storage.db import writing
from api.storage.models import SimulationJob
from engine.policies.localities import covers, scope_prefix
from engine.schema.masking import scrub

_SIM = SimulationJob.__table__
_PG_CLAIM_LOCK = 0x6A7A7369  # serialises claims between worker processes on PostgreSQL
MAX_ATTEMPTS = 2  # a job interrupted twice (its worker died or restarted) fails instead of looping

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# What a caller or a population writes, stored with resident ID numbers masked (not the hashes and ids).
_FREE_TEXT = ("population", "reform_name", "reform_yaml", "rules_json", "reform_info_json", "caller_name")
_SUMMARY_COLUMNS = [c for c in _SIM.c if c.name not in ("reform_yaml", "rules_json", "result_json")]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def interrupted_error() -> list[dict]:
    return [
        error_item(
            "(job)",
            f"试算被中断{MAX_ATTEMPTS}次（服务重启或进程退出），已停止重试；请重新提交",
            f"interrupted {MAX_ATTEMPTS} times (service restarted or a process died): not retried again; submit it again",
            "interrupted",
        )
    ]


class CallerQueueFull(Exception):
    """The caller already has as many queued or running jobs as one caller may."""

    def __init__(self, held: int):
        super().__init__(f"{held} simulations queued or running")
        self.held = held


class SimulationStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- submitting ----------------------------------------------------------------
    def submit(self, row: dict, per_caller: int | None = None):
        """Insert a queued job; returns ``(row, replayed)``. With an Idempotency-Key already used by this
        caller, the earlier job comes back instead (``replayed`` true) and nothing is inserted. Raises
        ``CallerQueueFull`` when the caller already has ``per_caller`` jobs queued or running."""
        key = row.get("idempotency_key")
        row = {k: scrub(v) if k in _FREE_TEXT and isinstance(v, str) else v for k, v in row.items()}
        try:
            with writing(self.engine) as conn, conn.begin():
                if key is not None:
                    prior = self._by_idempotency(conn, row["caller_key_id"], key)
                    if prior is not None:
                        return prior, True
                if per_caller is not None:
                    if conn.dialect.name == "postgresql":  # two workers must not both see room for one more
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CLAIM_LOCK})
                    held = self._held(conn, row["caller_key_id"])
                    if held >= per_caller:
                        raise CallerQueueFull(held)
                conn.execute(insert(_SIM), [row])
        except IntegrityError:  # the same key, submitted at the same moment by a retry in another worker
            if key is None:
                raise
            with self.engine.connect() as conn:
                prior = self._by_idempotency(conn, row["caller_key_id"], key)
            if prior is None:
                raise
            return prior, True
        return self.get(row["id"]), False

    @staticmethod
    def _held(conn, caller_key_id: str) -> int:
        return conn.execute(
            select(func.count())
            .select_from(_SIM)
            .where(_SIM.c.caller_key_id == caller_key_id, _SIM.c.status.in_((QUEUED, RUNNING)))
        ).scalar_one()

    def held(self, caller_key_id: str) -> int:
        """The caller's jobs queued or running."""
        with self.engine.connect() as conn:
            return self._held(conn, caller_key_id)

    @staticmethod
    def _by_idempotency(conn, caller_key_id: str, key: str):
        return conn.execute(select(_SIM).where(_SIM.c.caller_key_id == caller_key_id, _SIM.c.idempotency_key == key)).first()

    # -- reading ---------------------------------------------------------------------
    def by_idempotency(self, caller_key_id: str, key: str):
        with self.engine.connect() as conn:
            return self._by_idempotency(conn, caller_key_id, key)

    def get(self, job_id: str, scope: str | None = None):
        """The job, or None when unknown or submitted from a scope ``scope`` does not cover (the same answer)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_SIM).where(_SIM.c.id == job_id)).first()
        return row if row is not None and (scope is None or covers(scope, row.caller_scope)) else None

    def queued(self) -> int:
        """Jobs waiting to run, across every replica."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(_SIM).where(_SIM.c.status == QUEUED)).scalar_one()

    def queue_position(self, job_id: str) -> int:
        """How many queued jobs were submitted before this one."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(_SIM).where(_SIM.c.status == QUEUED, _SIM.c.id < job_id)
            ).scalar_one()

    def recent(self, limit: int, before: str | None = None, scope: str | None = None) -> list:
        q = select(*_SUMMARY_COLUMNS)
        if scope is not None and scope_prefix(scope):
            q = q.where(_SIM.c.caller_scope.like(scope_prefix(scope) + "%"))
        if before:
            q = q.where(_SIM.c.id < before)
        with self.engine.connect() as conn:
            return list(conn.execute(q.order_by(_SIM.c.id.desc()).limit(limit)))

    # -- running -----------------------------------------------------------------------
    def claim(self, runner: str, limit: int, stale_seconds: float):
        """Recover jobs whose runner stopped beating, then take the oldest queued job if fewer than
        ``limit`` are running anywhere. Returns the claimed row or None."""
        now = utcnow()
        stale_before = now - dt.timedelta(seconds=stale_seconds)
        if not self._anything_to_do(stale_before):  # the usual case: no write lock taken every poll
            return None
        with writing(self.engine) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CLAIM_LOCK})
            self._recover(conn, stale_before)
            running = conn.execute(select(func.count()).select_from(_SIM).where(_SIM.c.status == RUNNING)).scalar_one()
            if running >= limit:
                return None
            job_id = conn.execute(
                select(_SIM.c.id).where(_SIM.c.status == QUEUED).order_by(_SIM.c.id).limit(1)
            ).scalar_one_or_none()
            if job_id is None:
                return None
            conn.execute(
                update(_SIM)
                .where(_SIM.c.id == job_id, _SIM.c.status == QUEUED)
                .values(
                    status=RUNNING,
                    runner=runner,
                    started_at=now,
                    heartbeat_at=now,
                    attempts=_SIM.c.attempts + 1,
                    households_done=0,
                )
            )
            return conn.execute(select(_SIM).where(_SIM.c.id == job_id)).first()

    def _anything_to_do(self, stale_before: dt.datetime) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(_SIM.c.id)
                    .where(
                        or_(
                            _SIM.c.status == QUEUED,
                            (_SIM.c.status == RUNNING) & or_(_SIM.c.heartbeat_at.is_(None), _SIM.c.heartbeat_at < stale_before),
                        )
                    )
                    .limit(1)
                ).first()
                is not None
            )

    def _recover(self, conn, stale_before: dt.datetime) -> None:
        stale = conn.execute(
            select(_SIM.c.id, _SIM.c.attempts).where(
                _SIM.c.status == RUNNING, or_(_SIM.c.heartbeat_at.is_(None), _SIM.c.heartbeat_at < stale_before)
            )
        ).all()
        for job_id, attempts in stale:
            if attempts >= MAX_ATTEMPTS:
                values = {"status": FAILED, "finished_at": utcnow(), "errors_json": orjson.dumps(interrupted_error()).decode()}
            else:
                values = {"status": QUEUED, "runner": None, "started_at": None, "heartbeat_at": None, "households_done": None}
            conn.execute(update(_SIM).where(_SIM.c.id == job_id, _SIM.c.status == RUNNING).values(**values))

    def recover(self, stale_seconds: float) -> None:
        with writing(self.engine) as conn, conn.begin():
            self._recover(conn, utcnow() - dt.timedelta(seconds=stale_seconds))

    def heartbeat(self, job_id: str, runner: str, households_done: int | None) -> bool:
        """Record that the job is alive; False when it is no longer ours (recovered by another worker)."""
        values: dict = {"heartbeat_at": utcnow()}
        if households_done is not None:
            values["households_done"] = households_done
        return self._update_running(job_id, runner, values)

    def finish(
        self,
        job_id: str,
        runner: str,
        *,
        result_json: str | None = None,
        files_json: str | None = None,
        errors: list[dict] | None = None,
        households_done: int | None = None,
        attach: Callable[[Connection], None] | None = None,
    ) -> bool:
        """Record the outcome if the job is still ours; ``attach`` (its files) runs in the same
        transaction, after the job is found ours: the files and the outcome are written together or not at all."""
        values = {
            "status": FAILED if errors else DONE,
            "finished_at": utcnow(),
            "heartbeat_at": utcnow(),
            # outputs name households (gains and losses): an id that is an ID number is stored masked
            "result_json": scrub(result_json) if result_json else result_json,
            "files_json": scrub(files_json) if files_json else files_json,
            "errors_json": scrub(orjson.dumps(errors).decode()) if errors else None,
        }
        if households_done is not None:
            values["households_done"] = households_done
        return self._update_running(job_id, runner, values, attach)

    def requeue(self, job_id: str, runner: str) -> None:
        """The service is stopping: give the job back to the queue (the attempt does not count)."""
        self._update_running(
            job_id,
            runner,
            {
                "status": QUEUED,
                "runner": None,
                "started_at": None,
                "heartbeat_at": None,
                "households_done": None,
                "attempts": _SIM.c.attempts - 1,  # claim counted it
            },
        )

    def _update_running(self, job_id: str, runner: str, values: dict, attach: Callable[[Connection], None] | None = None) -> bool:
        """Change the job if it is still running under ``runner``; False when it is no longer ours
        (recovered by another worker, or finished)."""
        with writing(self.engine) as conn, conn.begin():
            n = conn.execute(
                update(_SIM).where(_SIM.c.id == job_id, _SIM.c.runner == runner, _SIM.c.status == RUNNING).values(**values)
            ).rowcount
            if n == 1 and attach is not None:
                attach(conn)
        return n == 1
