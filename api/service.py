"""Evaluate and record: the logic behind POST /v1/evaluate and /v1/evaluate/batch."""

from __future__ import annotations

import datetime as dt
import logging
import re

import orjson
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from engine import Engine, InputError
from engine.validate import parse

from .auth import Caller
from .errors import ApiError, Unrecordable
from .ids import uuid7
from .records import build_row, iso, output_of, request_hash, with_record_fields
from .repository import Repository
from .settings import Settings

log = logging.getLogger("jiuzhu.api")

_IDEM_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_JSON = "application/json"


def _idem_error(zh: str, en: str, code: str) -> ApiError:
    return ApiError(422, "Idempotency-Key", zh, en, code)


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not _IDEM_RE.match(key):
        raise _idem_error(
            "Idempotency-Key 应为1至255个可见 ASCII 字符", "Idempotency-Key must be 1 to 255 visible ASCII characters", "invalid"
        )
    return key


def _reused() -> ApiError:
    return _idem_error(
        "该 Idempotency-Key 已用于另一份不同的请求",
        "this Idempotency-Key was already used with a different request body",
        "idempotency_key_reused",
    )


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "(database)",
        "数据库暂不可用，本次认定未记录，请稍后重试",
        "database unavailable: nothing recorded, retry later",
        "unavailable",
    )


class Service:
    def __init__(self, settings: Settings, engine: Engine, repo: Repository, writer):
        self.settings = settings
        self.engine = engine
        self.repo = repo
        self.writer = writer

    # -- one household -------------------------------------------------------------
    async def evaluate(self, body: bytes, caller: Caller, idem: str | None) -> Response:
        try:
            parsed = parse(body)
        except InputError as e:
            return Response(orjson.dumps(e.to_dict()), 422, media_type=_JSON)
        req_hash = request_hash(parsed.raw)
        if idem is not None:
            prior = await run_in_threadpool(self.repo.find_idempotent, caller.key_id, idem)
            if prior is not None:
                return self._replay_one(prior, req_hash)

        det = self.engine.evaluate_parsed(parsed)
        out = orjson.dumps(det)
        now = dt.datetime.now(dt.UTC)
        row = build_row(det, out, parsed.raw, req_hash, caller, now, idem)
        try:
            replay = await self.writer.write([row], idem=(caller.key_id, idem, False) if idem else None)
        except Unrecordable as e:
            raise e.api_error() from None
        except Exception:
            log.exception("recording a determination failed")
            raise _unavailable() from None
        if replay is not None:
            return self._replay_one(replay.row, req_hash)
        return Response(
            with_record_fields(out, row["id"], iso(now)),
            200,
            media_type=_JSON,
            headers={"Location": f"/v1/determinations/{row['id']}"},
        )

    @staticmethod
    def _replay_one(row, req_hash: str) -> Response:
        m = row._mapping if hasattr(row, "_mapping") else row
        if m["request_hash"] != req_hash:
            raise _reused()
        return Response(
            with_record_fields(output_of(m), m["id"], iso(m["created_at"])),
            200,
            media_type=_JSON,
            headers={"Location": f"/v1/determinations/{m['id']}", "Idempotent-Replayed": "true"},
        )

    # -- many households -----------------------------------------------------------
    async def evaluate_batch(self, body: bytes, caller: Caller, idem: str | None) -> Response:
        households = self._batch_items(body)
        req_hash = request_hash({"households": households})
        if idem is not None:
            prior = await run_in_threadpool(self.repo.find_idempotent, caller.key_id, idem, True)
            if prior is not None:
                return await self._replay_batch(prior, req_hash)

        batch_id = uuid7()
        now = dt.datetime.now(dt.UTC)
        # Evaluation is CPU work: in a worker thread the event loop still answers other requests between slices.
        rows, pieces, refused = await run_in_threadpool(self._evaluate_many, households, caller, now, batch_id, idem)
        batch_row = {
            "id": batch_id,
            "caller_key_id": caller.key_id,
            "caller_name": caller.name,
            "caller_role": str(caller.role),
            "created_at": now,
            "idempotency_key": idem,
            "request_hash": req_hash,
            "count": len(households),
            "answered": len(rows),
            "refused_json": orjson.dumps({str(i): errs for i, errs in refused.items()}).decode(),
        }
        try:
            replay = await self.writer.write(rows, batch_row, (caller.key_id, idem, True) if idem else None)
        except Unrecordable as e:
            raise e.api_error() from None
        except Exception:
            log.exception("recording a batch failed")
            raise _unavailable() from None
        if replay is not None:
            return await self._replay_batch(replay.row, req_hash)
        return self._batch_response(batch_id, now, len(households), len(rows), pieces)

    def _batch_items(self, body: bytes) -> list:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ApiError(422, "(root)", "不是有效的 JSON", f"invalid JSON: {e}", "json_invalid") from None
        if not isinstance(data, dict) or set(data) != {"households"}:
            raise ApiError(422, "(root)", '请求体应为 {"households": [...]}', 'body must be {"households": [...]}', "invalid")
        households = data["households"]
        if not isinstance(households, list):
            raise ApiError(422, "households", "应为数组", "must be an array", "list_type")
        limit = self.settings.max_batch_households
        if not households:
            raise ApiError(422, "households", "至少需要一户", "needs at least one household", "too_short")
        if len(households) > limit:
            raise ApiError(
                422,
                "households",
                f"一次最多评估{limit}户（本次{len(households)}户），请分批提交",
                f"at most {limit} households per call (got {len(households)})",
                "too_long",
            )
        return households

    def _evaluate_many(self, households: list, caller: Caller, now: dt.datetime, batch_id: str, idem: str | None):
        rows: list[dict] = []
        pieces: list[bytes] = []
        refused: dict[int, list] = {}
        for i, item in enumerate(households):
            try:
                parsed = parse(item)
            except InputError as e:
                errs = e.to_dict()["errors"]
                refused[i] = errs
                pieces.append(orjson.dumps({"index": i, "status": "refused", "errors": errs}))
                continue
            det = self.engine.evaluate_parsed(parsed)
            out = orjson.dumps(det)
            row = build_row(det, out, parsed.raw, request_hash(parsed.raw), caller, now, None, batch_id, i)
            rows.append(row)
            pieces.append(_answered_piece(i, row["id"], out))
        return rows, pieces, refused

    @staticmethod
    def _batch_response(
        batch_id: str, created_at, count: int, answered: int, pieces: list[bytes], replayed: bool = False
    ) -> Response:
        head = orjson.dumps(
            {
                "batch_id": batch_id,
                "recorded_at": iso(created_at),
                "count": count,
                "answered": answered,
                "refused": count - answered,
            }
        )
        body = head[:-1] + b',"results":[' + b",".join(pieces) + b"]}"
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return Response(body, 200, media_type=_JSON, headers=headers)

    async def _replay_batch(self, batch, req_hash: str) -> Response:
        b = batch._mapping if hasattr(batch, "_mapping") else batch
        if b["request_hash"] != req_hash:
            raise _reused()
        dets = await run_in_threadpool(self.repo.batch_determinations, b["id"])
        refused = {int(k): v for k, v in orjson.loads(b["refused_json"]).items()}
        by_index = {r.batch_index: r for r in dets}
        pieces = []
        for i in range(b["count"]):
            if i in refused:
                pieces.append(orjson.dumps({"index": i, "status": "refused", "errors": refused[i]}))
            else:
                r = by_index[i]
                pieces.append(_answered_piece(i, r.id, output_of(r._mapping)))
        return self._batch_response(b["id"], b["created_at"], b["count"], b["answered"], pieces, replayed=True)


def _answered_piece(i: int, determination_id: str, out: bytes) -> bytes:
    return b'{"index":%d,"status":"answered","determination_id":"%s","determination":%s}' % (i, determination_id.encode(), out)
