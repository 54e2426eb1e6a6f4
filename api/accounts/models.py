"""The accounts' tables (schema changes go through api/storage/migrations, like every table)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel


def _ts(**kw) -> Column:
    return Column(DateTime(timezone=True), **kw)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=32)  # u_…: what records name as the caller
    name: str = Field(max_length=64, unique=True)  # what the person types to sign in
    role: str = Field(max_length=16)  # auth.Role, as for keys
    locality: str = Field(max_length=6)  # auth.Scope: the division whose subtree the person may see
    password_hash: str = Field(max_length=255)  # argon2id, in its own encoded form (salt and cost inside)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    last_sign_in_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    disabled_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class UserSession(SQLModel, table=True):
    """A signed-in browser. Kept in the database, not in a signed cookie, so that signing out,
    disabling a user or revoking a session reaches every worker and replica at once."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user", "user_id"),)

    id_hash: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie's random id; never the id
    user_id: str = Field(max_length=32)
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    last_seen_at: dt.datetime = Field(sa_column=_ts(nullable=False))  # for the idle timeout
    expires_at: dt.datetime = Field(sa_column=_ts(nullable=False))  # the absolute lifetime
    revoked_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class SignInThrottle(SQLModel, table=True):
    """Recent failed sign-ins of one subject: a user name (hashed: people type passwords into the
    name field) or a client address. In the database, so that every replica counts the same failures."""

    __tablename__ = "sign_in_throttle"

    subject: str = Field(primary_key=True, max_length=80)
    failures: int
    last_failure_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    locked_until: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))
