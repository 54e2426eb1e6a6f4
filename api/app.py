"""The FastAPI application: ``create_app()`` builds it from settings (uvicorn calls it in each worker)."""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
from contextlib import asynccontextmanager
from time import perf_counter

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from api.auth.keys import SECURITY_SCHEMES, KeyCache
from api.core import request_log
from api.core.config import Settings
from api.core.errors import PROBLEM_JSON
from api.core.logmask import configure_logging as _configure_logging  # the name tests and callers know
from api.core.metrics import REQUEST_SECONDS
from api.evaluation.service import Service
from api.monitoring.service import LocalMonitor
from api.processes.monitor import RemoteMonitor, make_service
from api.processes.writer import RemoteWriter
from api.simulations.service import SimulationService
from api.storage.db import make_engine, migrate, require_head
from api.storage.group_commit import GroupCommitWriter
from api.storage.id_secret import load_id_secret
from api.storage.repository import Repository
from engine import Engine, load_rulebook
from engine.schema.model import Household

from .routes import evaluate, health, keys, metrics, monitoring, records, reference, simulations
from .routes import responses as errors
from .web import api_docs
from .web import pages as web_pages

log = logging.getLogger("jiuzhu.api")

DESCRIPTION = """
jiuzhu 救助 认定服务：乡镇（街道）一门受理窗口与经办人员通过本接口评估家庭的社会救助资格。

* 每次评估都会记录（家庭记录中的身份证号脱敏保存）、并在写入数据库后才返回结果。
* 调用需带 API 密钥：`Authorization: Bearer jzk_…`（或 `X-API-Key`）。角色：
  `window` 窗口（评估、批量评估）、`caseworker` 经办人员（评估、查阅记录）、
  `policy` 政策人员（全部查阅、改革试算）、`admin` 管理员（管理密钥及以上全部）。
* 拒绝时返回 RFC 9457 问题文档（`application/problem+json`：`type`、`title`、`status`、`detail`），
  其中 `errors` 逐项列出出错字段：`{"errors": [{"field": "members[1].birth_date", "message": "…"}]}`，中英文说明。
* POST 请求可带 `Idempotency-Key`：重试时返回第一次的结果，不重复记录。
"""


def _household_schemas() -> dict:
    """Household (and the batch wrapper) for the request bodies; the models describe money and codes themselves."""

    class BatchRequest(BaseModel):
        households: list[Household]
        explain: bool = Field(False, description="每户返回逐条规则理由；默认只返回认定结论（成员总数上限较低）")

    schema = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs")
    schema["properties"]["households"].update({"minItems": 1, "maxItems": 1000})
    schema["additionalProperties"] = False
    defs["BatchRequest"] = schema
    return defs


def _openapi(app: FastAPI):
    def build() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        components = spec.setdefault("components", {})
        components.setdefault("schemas", {}).update(copy.deepcopy(_household_schemas()))
        components["securitySchemes"] = SECURITY_SCHEMES
        for path, ops in spec["paths"].items():
            for op in ops.values():
                if path.startswith("/v1/"):
                    op["security"] = [{"bearer": []}, {"apiKey": []}]
                for status, answer in op.get("responses", {}).items():
                    # Refusals are RFC 9457 problem documents (api/routes/responses.py): say so.
                    content = answer.get("content", {})
                    if status[:1] in "45" and "application/json" in content:
                        media = content[PROBLEM_JSON] = content.pop("application/json")
                        if media.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                            media["schema"] = {"$ref": "#/components/schemas/ErrorBody"}  # FastAPI's default 422
        app.openapi_schema = spec
        return spec

    return build


class _App(FastAPI):
    """FastAPI, with the hot route served before the middleware and router (see evaluate.fast_evaluate)."""

    access_log = False  # one line per request (settings.access_log), set by create_app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await request_log.handle(scope, receive, send, self._serve, self.access_log)

    async def _serve(self, scope, receive, send) -> None:
        info = request_log.current.get()
        start = perf_counter()
        if scope["path"] == "/v1/evaluate" and scope["method"] == "POST":
            scope["app"] = self
            info.route = "/v1/evaluate"
            try:
                await evaluate.fast_evaluate(scope, receive, send)
            finally:
                REQUEST_SECONDS.labels("POST", "/v1/evaluate").observe(perf_counter() - start)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The route's template (FastAPI puts the matched route in the scope), never the raw path:
            # one series per route, whatever ids the paths carry.
            info.route = getattr(scope.get("route"), "path", "(unmatched)")
            REQUEST_SECONDS.labels(scope["method"], info.route).observe(perf_counter() - start)


def _monitor(settings: Settings, db):
    """The monitor process of `jiuzhu serve` when there is one, else a monitor in this process."""
    if settings.monitor_socket:
        return RemoteMonitor(settings.monitor_socket)
    return LocalMonitor(lambda: make_service(settings, db))


def create_app(settings: Settings | None = None, rules: Engine | None = None) -> FastAPI:
    """``settings``: `jiuzhu serve` hands its workers its own; None (an embedding, `uvicorn --factory
    api.app:create_app`) reads them from the environment here, once."""
    settings = settings or Settings.from_env()
    _configure_logging(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = rules or Engine(load_rulebook(settings.home))
        db = make_engine(settings)
        if settings.migrates_on_start:
            migrate(db)  # a no-op at head; `jiuzhu serve` has already migrated before starting workers
        else:
            require_head(db)  # PostgreSQL: replicas never migrate; `jiuzhu db upgrade` does, under a lock
        repo = Repository(db)
        id_secret = load_id_secret(db, settings)
        if settings.writer_socket:  # `jiuzhu serve`: the writer process commits for every worker
            writer = RemoteWriter(settings.writer_socket)
            await writer.connect()
        else:  # embedded (tests, a single process): a writer thread
            writer = GroupCommitWriter(repo, lock_path=settings.sqlite_path + ".writelock" if settings.sqlite_path else None)
        app.state.settings = settings
        app.state.engine = engine
        app.state.db = db
        app.state.repo = repo
        app.state.writer = writer
        app.state.keys = KeyCache(repo.caller_for_hash, settings.key_cache_seconds)
        app.state.id_secret = id_secret
        app.state.service = Service(settings, engine, repo, writer, id_secret)
        sims = app.state.simulation_service = SimulationService.open(settings, db, engine.book.dir.parent, id_secret)
        app.state.simulations = sims.store
        # Locals, not app.state, are closed below: a lifespan entered twice on one app (a test
        # client inside another) must still stop the runner and monitor it started.
        checker = app.state.reform_checker = sims.checker
        runner = app.state.simulation_runner = sims.runner
        monitor = app.state.monitor = _monitor(settings, db)
        # What was loaded so far (the rule book, modules) lives as long as the process: keep it out of the
        # collector's way, so that collections of the many short-lived objects of each request stay short.
        gc.collect()
        gc.freeze()
        log.info("ready: ruleset %s, database %s", engine.version, db.url.render_as_string(hide_password=True))
        runner.start()  # last: nothing that can fail stands between it and the ``finally`` that stops it
        try:
            yield
        finally:
            await asyncio.to_thread(runner.close)  # ends a running simulation's process, re-queues its job
            await monitor.aclose()
            checker.close()
            if isinstance(writer, RemoteWriter):
                await writer.aclose()
            else:
                writer.close()
            db.dispose()

    app = _App(
        title="jiuzhu 救助 认定服务",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api_docs with local assets instead of FastAPI's CDN links
        redoc_url=None,
        openapi_tags=[
            {"name": "评估 evaluate", "description": "评估家庭并记录认定结果"},
            {"name": "认定记录 records", "description": "查阅认定记录与一户的历史"},
            {"name": "规则与参数 reference", "description": "地区、参数、救助项目与规则"},
            {"name": "改革试算 simulations", "description": "政策人员：在人口数据上比较现行规则与改革方案（后台任务）"},
            {"name": "动态监测 monitoring", "description": "报送家庭变化事件，重新认定并预警；查看、确认、关闭预警"},
            {"name": "密钥 keys", "description": "API 密钥管理（admin）"},
            {"name": "运行状态 health", "description": "存活与就绪检查"},
        ],
    )
    app.access_log = settings.access_log
    errors.install(app)
    for r in (
        evaluate.router,
        records.router,
        reference.router,
        monitoring.router,
        simulations.router,
        keys.router,
        health.router,
        metrics.router,
    ):
        app.include_router(r)
    web_pages.install(app)
    api_docs.install(app)
    app.openapi = _openapi(app)
    return app
