"""Evaluate and record: the logic behind POST /v1/evaluate and /v1/evaluate/batch.

No HTTP here: the service takes the body's bytes and the caller, and returns an ``Answer`` (the
pre-serialised JSON, its status, where it is recorded) or a ``BatchAnswer`` (its pieces, streamed by
the route), or raises ``ApiError``; api/routes/evaluate.py turns them into HTTP responses."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio.to_thread
import orjson

from api.auth.keys import Caller, out_of_scope
from api.core import request_log
from api.core.config import Settings
from api.core.errors import ApiError, Unrecordable, error_item, problem
from api.evaluation.records import build_row, idempotency_key, iso, output_of, request_hash, scrub_json, with_record_fields
from api.storage.ids import uuid7
from api.storage.repository import Repository
from engine import Engine, InputError
from engine.schema.validate import parse

log = logging.getLogger("jiuzhu.api")

_IDEM_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class Answer:
    """One household's answer: the JSON body as it is sent (serialised once, on the hot path)."""

    body: bytes
    status: int = 200
    location: str | None = None  # where the determination is recorded
    replayed: bool = False  # the answer to an earlier request with the same Idempotency-Key


@dataclass(slots=True)
class BatchAnswer:
    """A batch's answer: its head and one piece per household, sent piece by piece (``chunks``)."""

    head: bytes
    pieces: list[bytes]
    replayed: bool = False

    def chunks(self) -> AsyncIterator[bytes]:
        return _stream(self.head, self.pieces)


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
    def __init__(self, settings: Settings, engine: Engine, repo: Repository, writer, id_secret: bytes = b""):
        self.settings = settings
        self.engine = engine
        self.repo = repo
        self.writer = writer
        self.id_secret = id_secret  # keys the hashes stored next to masked ID numbers (api/storage/id_secret.py)

    # -- one household -------------------------------------------------------------
    async def evaluate(self, body: bytes, caller: Caller, idem: str | None) -> Answer:
        try:
            parsed = parse(body)
        except InputError as e:
            return Answer(orjson.dumps(problem(422, e.to_dict()["errors"])), 422)
        request_log.note_locality(parsed.locality)
        if not caller.scope.covers(parsed.locality):
            raise out_of_scope()
        idem = idempotency_key(idem, self.id_secret)  # only its keyed hash is looked up and stored
        req_hash = request_hash(parsed.raw)
        if idem is not None:
            prior = await anyio.to_thread.run_sync(self.repo.find_idempotent, caller.key_id, idem)
            if prior is not None:
                return self._replay_one(prior, req_hash)

        det = self.engine.evaluate_parsed(parsed)
        out = orjson.dumps(det)
        now = dt.datetime.now(dt.UTC)
        row = build_row(det, out, parsed.raw, req_hash, caller, now, idem, secret=self.id_secret)
        try:
            replay = await self.writer.write([row], idem=(caller.key_id, idem, False) if idem else None)
        except Unrecordable as e:
            raise e.api_error() from None
        except Exception:
            log.exception("recording a determination failed")
            raise _unavailable() from None
        if replay is not None:
            return self._replay_one(replay.row, req_hash)
        return Answer(with_record_fields(out, row["id"], iso(now)), 200, f"/v1/determinations/{row['id']}")

    @staticmethod
    def _replay_one(row, req_hash: str) -> Answer:
        m = row._mapping if hasattr(row, "_mapping") else row
        if m["request_hash"] != req_hash:
            raise _reused()
        body = with_record_fields(output_of(m), m["id"], iso(m["created_at"]))
        return Answer(body, 200, f"/v1/determinations/{m['id']}", replayed=True)

    # -- many households -----------------------------------------------------------
    async def evaluate_batch(self, body: bytes, caller: Caller, idem: str | None, explain: bool = False) -> BatchAnswer:
        """``explain``: every rule's reason in each determination (as POST /v1/evaluate gives it); without
        it, decisions only (``"explained": false``), which bounds the answer and the memory it takes."""
        households, explain = self._batch_items(body, explain)
        idem = idempotency_key(idem, self.id_secret)
        req_hash = request_hash({"households": households, **({"explain": True} if explain else {})})
        if idem is not None:
            prior = await anyio.to_thread.run_sync(self.repo.find_idempotent, caller.key_id, idem, True)
            if prior is not None:
                return await self._replay_batch(prior, req_hash)

        batch_id = uuid7()
        now = dt.datetime.now(dt.UTC)
        # Evaluation is CPU work: in a worker thread the event loop still answers other requests between slices.
        rows, pieces, refused = await anyio.to_thread.run_sync(self._evaluate_many, households, caller, now, batch_id, explain)
        del households  # the parsed request is not needed to answer: let it go before the answer is sent
        batch_row = {
            "id": batch_id,
            "caller_key_id": caller.key_id,
            "caller_name": caller.name,
            "caller_role": str(caller.role),
            "created_at": now,
            "idempotency_key": idem,
            "request_hash": req_hash,
            "count": len(pieces),
            "answered": len(rows),
            # errors can quote what was sent (an unknown field's name): stored with ID numbers masked
            "refused_json": orjson.dumps(scrub_json({str(i): errs for i, errs in refused.items()})).decode(),
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
        count, answered = len(pieces), len(rows)
        del rows  # recorded: only the answer's pieces stay in memory while it is sent
        return self._batch_response(batch_id, now, count, answered, pieces)

    def _batch_items(self, body: bytes, explain: bool) -> tuple[list, bool]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ApiError(422, "(root)", "不是有效的 JSON", f"invalid JSON: {e}", "json_invalid") from None
        if not isinstance(data, dict) or "households" not in data or not set(data) <= {"households", "explain"}:
            raise ApiError(
                422,
                "(root)",
                '请求体应为 {"households": [...]}（可加 "explain": true）',
                'body must be {"households": [...]} (optionally with "explain": true)',
                "invalid",
            )
        if "explain" in data:
            if not isinstance(data["explain"], bool):
                raise ApiError(422, "explain", "应为 true 或 false", "must be true or false", "bool_type")
            explain = explain or data["explain"]
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
        # Cost grows with members, not households: bound them before anything is evaluated.
        members = sum(len(h["members"]) for h in households if isinstance(h, dict) and isinstance(h.get("members"), list))
        if explain and members > self.settings.max_explained_batch_members:
            cap = self.settings.max_explained_batch_members
            raise ApiError(
                422,
                "households",
                f"要求逐条理由（explain）时一次最多{cap}名成员（本次{members}名）：请分批提交，或不要求逐条理由",
                f"at most {cap} members per call with explanations (got {members}): split the batch, or leave out explain",
                "too_many_members",
            )
        if members > self.settings.max_batch_members:
            cap = self.settings.max_batch_members
            raise ApiError(
                422,
                "households",
                f"一次最多评估{cap}名成员（本次{members}名），请分批提交",
                f"at most {cap} members per call (got {members})",
                "too_many_members",
            )
        # Only the compiled evaluator has a decisions-only form; the reference interpreter always explains.
        return households, explain or self.engine.fast is None

    def _evaluate_many(self, households: list, caller: Caller, now: dt.datetime, batch_id: str, explain: bool):
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
            if not caller.scope.covers(parsed.locality):
                e = out_of_scope()
                errs = [error_item(e.field, e.zh, e.en, e.code)]
                refused[i] = errs
                pieces.append(orjson.dumps({"index": i, "status": "refused", "errors": errs}))
                continue
            det = self.engine.evaluate_parsed(parsed, explain=explain)
            if not explain:
                det["explained"] = False  # said in the answer and in the record: no reason per rule checked
            out = orjson.dumps(det)
            row = build_row(det, out, parsed.raw, request_hash(parsed.raw), caller, now, None, batch_id, i, self.id_secret)
            rows.append(row)
            pieces.append(_answered_piece(i, row["id"], out))
        return rows, pieces, refused

    @staticmethod
    def _batch_response(
        batch_id: str, created_at, count: int, answered: int, pieces: list[bytes], replayed: bool = False
    ) -> BatchAnswer:
        head = orjson.dumps(
            {
                "batch_id": batch_id,
                "recorded_at": iso(created_at),
                "count": count,
                "answered": answered,
                "refused": count - answered,
            }
        )
        return BatchAnswer(head[:-1] + b',"results":[', pieces, replayed)

    async def _replay_batch(self, batch, req_hash: str) -> BatchAnswer:
        b = batch._mapping if hasattr(batch, "_mapping") else batch
        if b["request_hash"] != req_hash:
            raise _reused()
        dets = await anyio.to_thread.run_sync(self.repo.batch_determinations, b["id"])
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


async def _stream(head: bytes, pieces: list[bytes]):
    """The batch answer piece by piece: never joined into one copy, each piece freed once sent."""
    yield head
    for i in range(len(pieces)):
        piece, pieces[i] = pieces[i], b""
        yield piece if i == 0 else b"," + piece
    yield b"]}"


def _answered_piece(i: int, determination_id: str, out: bytes) -> bytes:
    return b'{"index":%d,"status":"answered","determination_id":"%s","determination":%s}' % (i, determination_id.encode(), out)
