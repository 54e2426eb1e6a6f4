"""Reform simulations as a service: submit, follow, list and download, for the API and the workbench alike.

No HTTP here: methods take the caller and plain values (the body's bytes, an Idempotency-Key, the
seconds a caller will wait) and return the job as the API shows it (``Job``), a ``Submitted`` or a
``Download``, or raise ``RequestInvalid`` (422, the fields named) or ``ApiError``. The routes
(api/routes/simulations.py) and the pages (api/web/simulation_pages.py) turn them into answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import orjson
from sqlalchemy import Engine

from api.auth.keys import Caller
from api.core.config import Settings
from api.core.errors import ApiError, not_found
from api.evaluation.records import idempotency_key, iso
from api.evaluation.service import check_idempotency_key
from api.simulations import populations
from api.simulations.child import OUTPUT_FILES
from api.simulations.files import SimulationFiles, legacy_files, make_files
from api.simulations.populations import Population
from api.simulations.reform_checks import ReformChecker
from api.simulations.runner import SimulationRunner
from api.simulations.store import DONE, FAILED, QUEUED, RUNNING, CallerQueueFull, SimulationStore
from api.storage.ids import uuid7
from api.storage.repository import as_utc

ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MAX_WAIT_SECONDS = 60
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d{1,6})(?:$|[,;\s])", re.I)
_WAIT_POLL_SECONDS = 0.25


def href(job_id: str, name: str | None = None) -> str:
    return f"/v1/simulations/{job_id}" + (f"/files/{name}" if name else "")


def prefer_wait(prefer: str | None) -> int:
    """The seconds of ``Prefer: wait=N`` (RFC 7240), at most ``MAX_WAIT_SECONDS``; 0 without it."""
    m = _PREFER_WAIT.search(prefer or "")
    return min(int(m.group(1)), MAX_WAIT_SECONDS) if m else 0


def job_body(m, queue_position: int | None = None, with_result: bool = True) -> dict:
    """A job row as the API shows it: no server paths, files as links."""
    job_id = m["id"]
    files = orjson.loads(m["files_json"]) if m["files_json"] else {}
    listed = [
        {"name": n, "title": OUTPUT_FILES[n][1], "media_type": OUTPUT_FILES[n][0], "bytes": size, "href": href(job_id, n)}
        for n, size in files.items()
        if n in OUTPUT_FILES
    ]
    result = None
    if with_result and m["result_json"]:
        result = orjson.loads(m["result_json"])
        result["files"] = {k: href(job_id, v) for k, v in result.get("files", {}).items() if v in files}
    progress = None
    if m["status"] in (RUNNING, DONE):
        total, done = m["households_total"], m["households_done"]
        if m["status"] == DONE and result is not None:
            done = total = result.get("households", done)
        end = as_utc(m["finished_at"]) if m["finished_at"] else dt.datetime.now(dt.UTC)
        progress = {
            "households_done": done,
            "households_total": total,
            "fraction": round(min(1.0, done / total), 4)
            if total and done is not None
            else (1.0 if m["status"] == DONE else None),
            "elapsed_seconds": round((end - as_utc(m["started_at"])).total_seconds(), 1) if m["started_at"] else None,
        }
    return {
        "simulation_id": job_id,
        "status": m["status"],
        "population": m["population"],
        "as_of": m["as_of"].isoformat() if m["as_of"] else None,
        "reform": orjson.loads(m["reform_info_json"]),
        "caller": {"key_id": m["caller_key_id"], "name": m["caller_name"], "role": m["caller_role"]},
        "created_at": iso(m["created_at"]),
        "started_at": iso(m["started_at"]) if m["started_at"] else None,
        "finished_at": iso(m["finished_at"]) if m["finished_at"] else None,
        "attempts": m["attempts"],
        "queue_position": queue_position,
        "progress": progress,
        "result": result,
        "files": listed,
        "errors": orjson.loads(m["errors_json"]) if m["errors_json"] else None,
        "links": {"self": href(job_id), "report": href(job_id, "report.html") if "report.html" in files else None},
    }


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the API shows it."""

    body: dict

    @property
    def id(self) -> str:
        return self.body["simulation_id"]

    @property
    def finished(self) -> bool:
        return self.body["status"] in (DONE, FAILED)

    @property
    def location(self) -> str:
        return href(self.id)


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    replayed: bool = False  # the job of an earlier submission with the same Idempotency-Key
    waited: int = 0  # the seconds of ``Prefer: wait`` within which it finished; 0: not waited for, or not finished


@dataclass(frozen=True, slots=True)
class Download:
    """A finished simulation's file, read a part at a time (api/simulations/files.py)."""

    name: str
    media_type: str
    filename: str  # what a browser saves it as
    size: int
    parts: Iterable[bytes]


class SimulationService:
    def __init__(
        self,
        settings: Settings,
        store: SimulationStore,
        files: SimulationFiles,
        checker: ReformChecker,
        runner: SimulationRunner,
        home: Path,
        id_secret: bytes,
    ):
        self.settings = settings
        self.store = store
        self.files = files
        self.legacy = legacy_files(settings)
        self.checker = checker
        self.runner = runner
        self.home = home
        self.id_secret = id_secret
        self._reform_checks = asyncio.Semaphore(1)  # a check loads a rule book (~0.5 s of CPU): one at a time per worker

    @classmethod
    def open(cls, settings: Settings, db: Engine, home: Path, id_secret: bytes) -> SimulationService:
        """The service with its store, file store, reform checker and runner (not started)."""
        store = SimulationStore(db)
        files = make_files(settings, db)
        runner = SimulationRunner(settings, store, home, files)
        return cls(settings, store, files, ReformChecker(settings), runner, home, id_secret)

    # -- submitting ------------------------------------------------------------------------------------------
    async def submit(self, caller: Caller, body: bytes, idempotency: str | None = None, wait: int = 0) -> Submitted:
        """Read, check and queue a simulation request body (the API's and the workbench form's). With
        ``wait`` seconds, wait that long for it to finish. Raises ``RequestInvalid`` (422 with the fields
        named) or ``ApiError``; nothing is queued then."""
        # only the Idempotency-Key's keyed hash is looked up and stored
        idem = idempotency_key(check_idempotency_key(idempotency), self.id_secret)
        m, replayed = await self._enqueue(caller, body, idem)
        if replayed:
            return Submitted(await self._job(m), replayed=True)
        if wait:
            m = await self._wait_for(m["id"], wait) or m
            if m["status"] in (DONE, FAILED):
                return Submitted(await self._job(m), waited=wait)
        return Submitted(await self._job(m))

    async def _enqueue(self, caller: Caller, body: bytes, idem: str | None):
        store = self.store
        req = await self.checker.parse(body)  # reading and checking the reform run in another process
        population = await anyio.to_thread.run_sync(
            populations.find, self.settings.populations_path, req.population, caller.scope.code
        )
        req_hash = req.request_hash()
        if idem is not None:
            prior = await anyio.to_thread.run_sync(store.by_idempotency, caller.key_id, idem)
            if prior is not None:
                return _replayed(prior._mapping, req_hash), True
        per_caller = self.settings.simulations_per_caller
        held = await anyio.to_thread.run_sync(store.held, caller.key_id)
        if held >= per_caller:  # before spending a reform check on it (submit counts again, under a lock)
            raise _queue_full(per_caller, held)
        async with self._reform_checks:
            info = await self.checker.check(req, self.home)
        row = {
            "id": uuid7(),
            "status": QUEUED,
            "population": population.name,
            "as_of": req.as_of,
            "reform_name": info["name"][:200],
            "reform_yaml": req.reform_yaml,
            "rules_json": orjson.dumps(req.rules).decode(),
            "reform_info_json": orjson.dumps(info).decode(),
            "caller_key_id": caller.key_id,
            "caller_name": caller.name,
            "caller_role": str(caller.role),
            "caller_scope": caller.scope.code,
            "idempotency_key": idem,
            "request_hash": req_hash,
            "created_at": dt.datetime.now(dt.UTC),
            "attempts": 0,
            "households_total": population.households,
        }
        try:
            stored, replayed = await anyio.to_thread.run_sync(store.submit, row, per_caller)
        except CallerQueueFull as e:
            raise _queue_full(per_caller, e.held) from None
        except Exception:
            raise ApiError(
                503,
                "(database)",
                "数据库暂不可用，试算未提交，请稍后重试",
                "database unavailable: nothing queued, retry later",
                "unavailable",
            ) from None
        if replayed:
            return _replayed(stored._mapping, req_hash), True
        self.runner.nudge()
        return stored._mapping, False

    async def _wait_for(self, job_id: str, seconds: int):
        deadline = time.monotonic() + seconds
        row = None
        while time.monotonic() < deadline:
            await asyncio.sleep(_WAIT_POLL_SECONDS)
            row = await anyio.to_thread.run_sync(self.store.get, job_id)
            if row is not None and row._mapping["status"] in (DONE, FAILED):
                break
        return row._mapping if row is not None else None

    # -- reading ----------------------------------------------------------------------------------------------
    async def _job(self, m) -> Job:
        position = await anyio.to_thread.run_sync(self.store.queue_position, m["id"]) if m["status"] == QUEUED else None
        return Job(job_body(m, position))

    async def job(self, job_id: str, scope: str) -> Job | None:
        """The job, or None when unknown or submitted from outside ``scope`` (the same answer)."""
        row = await anyio.to_thread.run_sync(self.store.get, job_id, scope)
        return None if row is None else await self._job(row._mapping)

    async def recent(self, limit: int, before: str | None, scope: str) -> tuple[list[dict], str | None]:
        """Jobs newest first, without their results, and the ``before`` of the next page (None: no more)."""
        rows = await anyio.to_thread.run_sync(self.store.recent, limit + 1, before, scope)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [job_body({**r._mapping, "result_json": None}, with_result=False) for r in rows]
        return items, rows[-1].id if more else None

    async def populations(self, scope: str) -> list[Population]:
        return await anyio.to_thread.run_sync(populations.available, self.settings.populations_path, scope)

    async def download(self, job_id: str, name: str, scope: str) -> Download:
        """One of the job's listed files, from whichever replica ran it."""
        row = await anyio.to_thread.run_sync(self.store.get, job_id, scope)
        if row is None:
            raise not_found("simulation_id", "未找到该试算", "no such simulation")
        m = row._mapping
        listed = orjson.loads(m["files_json"]) if m["files_json"] else {}
        if name not in OUTPUT_FILES or name not in listed:
            raise not_found("name", "该试算没有这个文件", "this simulation has no such file")
        # The name is one of OUTPUT_FILES and the id matched a stored job's: nothing else can be named.
        stored = await anyio.to_thread.run_sync(self.files.open, m["id"], name)
        if stored is None:  # finished before files were kept in a shared store: in a worker's data directory
            stored = await anyio.to_thread.run_sync(self.legacy.open, m["id"], name)
        if stored is None:
            raise not_found("name", "文件已不在服务器上（可能已被清理）", "the file is no longer on the server (cleaned up?)")
        return Download(name, OUTPUT_FILES[name][0], f"simulation-{m['id']}-{name}", stored.size, stored.parts)


def _queue_full(limit: int, held: int) -> ApiError:
    return ApiError(
        429,
        "(caller)",
        f"该密钥已有{held}个试算在排队或运行（每个密钥最多{limit}个），请待其完成后再提交",
        f"this key already has {held} simulations queued or running (at most {limit} per key): submit again once one has finished",
        "too_many_simulations",
        {"Retry-After": "30"},
    )


def _reused() -> ApiError:
    return ApiError(
        422,
        "Idempotency-Key",
        "该 Idempotency-Key 已用于另一份不同的试算请求",
        "this Idempotency-Key was already used with a different simulation request",
        "idempotency_key_reused",
    )


def _replayed(m, req_hash: str):
    if m["request_hash"] != req_hash:
        raise _reused()
    return m
