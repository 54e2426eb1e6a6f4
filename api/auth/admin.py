"""API keys for administrators: what GET/POST/DELETE /v1/keys do, as plain dicts and ApiErrors.

Blocking (the database): the routes call these in a worker thread. An administrator sees and
hands out no more than their own scope. The command line (`jiuzhu keys ...`) does the same.
"""

from __future__ import annotations

from api.auth.keys import Caller, Role, Scope, out_of_scope
from api.core.errors import ApiError, not_found
from api.evaluation.records import iso
from api.storage.models import ApiKey
from engine.policies.localities import LocalityError


def key_out(k: ApiKey) -> dict:
    return {
        "key_id": k.id,
        "name": k.name,
        "role": k.role,
        "prefix": k.prefix,
        "locality": k.locality,
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at) if k.revoked_at else None,
    }


def list_keys(repo, caller: Caller) -> list[dict]:
    return [key_out(k) for k in repo.list_keys(caller.scope)]


def create_key(repo, caller: Caller, name: str, role: str, locality: str | None) -> dict:
    """A new key (its full text returned this once); ``locality`` None: the caller's own scope."""
    try:
        scope = caller.scope if locality is None else Scope.of(locality)
    except LocalityError as e:
        raise ApiError(422, "locality", e.zh, e.en, "locality") from None
    if not caller.scope.contains(scope):
        raise out_of_scope()
    row, secret = repo.create_key(name, Role(role), scope)
    return {**key_out(row), "key": secret}


def revoke_key(repo, caller: Caller, key_id: str) -> dict:
    row = repo.revoke_key(key_id, caller.scope)
    if row is None:
        raise not_found("key_id", "未找到该密钥", "no such key")
    return key_out(row)
