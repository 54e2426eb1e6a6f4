"""API keys and roles.

A key is ``jzk_`` + 43 random URL-safe characters (256 bits). Only its SHA-256 is
stored: the key carries its own entropy, so a slow password hash would add
latency to every request and no safety. Roles grant permissions; routes ask for
a permission with ``Depends(require(Permission.X))`` (api/routes/deps.py), so a later
feature adds a permission and the roles that get it, without touching the routes
already here. This module knows no HTTP: ``refusal`` builds the 401/403 errors.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import anyio.to_thread

from api.core.errors import ApiError
from engine.policies.localities import NATIONAL, covers, division, full_name, scope_prefix

KEY_PREFIX = "jzk_"


class Role(StrEnum):
    WINDOW = "window"  # 窗口：评估、批量评估、报送监测事件、查看预警
    CASEWORKER = "caseworker"  # 经办人员：评估、查阅认定记录、报送监测事件、处理预警
    POLICY = "policy"  # 政策人员：全部查阅、改革试算
    ADMIN = "admin"  # 管理员：管理密钥，且可做以上一切


class Permission(StrEnum):
    EVALUATE = "evaluate"
    EVALUATE_BATCH = "evaluate_batch"
    READ_REFERENCE = "read_reference"  # localities, parameters, programs, rules
    READ_DETERMINATIONS = "read_determinations"
    MANAGE_KEYS = "manage_keys"
    SUBMIT_EVENTS = "submit_events"  # 动态监测：报送事件
    READ_ALERTS = "read_alerts"  # 查看预警
    MANAGE_ALERTS = "manage_alerts"  # 确认、关闭预警
    SIMULATE = "simulate"  # reform simulations over a configured population


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.WINDOW: frozenset(
        {Permission.EVALUATE, Permission.EVALUATE_BATCH, Permission.READ_REFERENCE, Permission.SUBMIT_EVENTS, Permission.READ_ALERTS}
    ),
    Role.CASEWORKER: frozenset(
        {
            Permission.EVALUATE,
            Permission.READ_DETERMINATIONS,
            Permission.READ_REFERENCE,
            Permission.SUBMIT_EVENTS,
            Permission.READ_ALERTS,
            Permission.MANAGE_ALERTS,
        }
    ),
    Role.POLICY: frozenset(
        {Permission.READ_REFERENCE, Permission.READ_DETERMINATIONS, Permission.READ_ALERTS, Permission.SIMULATE}
    ),
    Role.ADMIN: frozenset(Permission),
}

ROLE_LABELS = {Role.WINDOW: "窗口", Role.CASEWORKER: "经办人员", Role.POLICY: "政策人员", Role.ADMIN: "管理员"}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Scope:
    """The localities a caller may see and act for: one division code and its subtree.

    ``210102`` is one district, ``210000`` all of Liaoning, ``100000`` (全国) everything.
    Keys carry one today; a user account (session) would carry one the same way. Every
    read and write of locality-bound data asks ``covers``; SQL filters use ``prefix``."""

    code: str = NATIONAL

    @classmethod
    def of(cls, code: str | None) -> Scope:
        """A scope from a stored code (None: national); raises LocalityError for an unknown code."""
        if code is None:
            return cls()
        division(code)
        return cls(code)

    @property
    def national(self) -> bool:
        return self.code == NATIONAL

    @property
    def prefix(self) -> str:
        return scope_prefix(self.code)

    def covers(self, locality: object) -> bool:
        return covers(self.code, locality)

    def contains(self, other: Scope) -> bool:
        return covers(self.code, other.code)

    @property
    def label(self) -> str:
        return full_name(self.code)


NATIONAL_SCOPE = Scope()


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    name: str
    role: Role
    scope: Scope  # required: whatever authenticates a caller (key, later a session) must say where it may act

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]


class KeyCache:
    """Key hash -> Caller (or None for unknown/revoked), kept ``ttl`` seconds (``key_cache_seconds``).

    This is the revocation bound of a deployment: a key revoked anywhere (through another replica or
    worker, or ``jiuzhu keys revoke``) is refused everywhere at most ``ttl`` seconds later, since every
    entry is looked up again in the shared database once it is that old (0: on every request).
    Revoking through the HTTP API also clears this process's cache at once. ``clock``: for tests.
    """

    def __init__(self, lookup, ttl: float, clock=time.monotonic):
        self._lookup = lookup  # hash -> Caller | None (blocking)
        self._ttl = ttl
        self.clock = clock
        self._items: dict[str, tuple[float, Caller | None]] = {}

    async def get(self, key_hash: str) -> Caller | None:
        # Read before the look-up: an entry never outlives ``ttl`` from the moment the database was asked.
        now = self.clock()
        hit = self._items.get(key_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        caller = await anyio.to_thread.run_sync(self._lookup, key_hash)
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[key_hash] = (now + self._ttl, caller)
        return caller

    def clear(self) -> None:
        self._items.clear()


def refusal(status: int, caller: Caller | None = None, no_key: bool = False) -> ApiError:
    """401 (no key, or an unknown or revoked one) or 403 (the role lacks the permission)."""
    if status == 401:
        return ApiError(
            401,
            "Authorization",
            "缺少有效的 API 密钥" if no_key else "API 密钥无效或已撤销",
            "an API key is required" if no_key else "API key unknown or revoked",
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return ApiError(
        403,
        "Authorization",
        f"当前密钥的角色（{ROLE_LABELS[caller.role] if caller else '-'}）无权执行此操作",
        f"the key's role ({caller.role if caller else '-'}) may not do this",
        "forbidden",
    )


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer jzk_…`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "或 `X-API-Key: jzk_…`"},
}


def out_of_scope(field: str = "locality") -> ApiError:
    """403 for a locality the caller supplied (evaluate, register): it names nothing stored."""
    return ApiError(403, field, "该地区不在您的权限范围内", "this locality is outside the key's scope", "out_of_scope")
