"""Every read and write of users, sessions and sign-in failures (blocking: call from a thread pool or the CLI)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.auth.keys import NATIONAL_SCOPE, Caller, Role, Scope
from api.storage.db import writing
from api.storage.ids import uuid7
from api.storage.repository import as_utc, utcnow
from engine.schema.masking import scrub

from . import passwords, throttle
from .models import SignInThrottle, User, UserSession

_USERS = User.__table__
_SESSIONS = UserSession.__table__
_THROTTLE = SignInThrottle.__table__

NAME_MAX = 64
# A session is seen again at most this often in the database: the idle timeout needs minutes, not
# one write per page view.
_TOUCH_EVERY = dt.timedelta(seconds=60)


class AccountError(ValueError):
    """A user that cannot be created as asked: ``field`` names the input, ``zh`` says why."""

    def __init__(self, field: str, zh: str, en: str):
        super().__init__(en)
        self.field, self.zh, self.en = field, zh, en


@dataclass(frozen=True, slots=True)
class SignIn:
    """What a sign-in attempt came to: a user, or a refusal (``retry_after`` seconds when throttled)."""

    user: User | None = None
    retry_after: int = 0


def _hash_session(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise AccountError("name", f"用户名不能为空且不超过 {NAME_MAX} 个字", f"the name must be 1-{NAME_MAX} characters")
    if any(c.isspace() for c in name) or not name.isprintable():
        raise AccountError("name", "用户名不能含空格或不可见字符", "the name may not contain spaces or control characters")
    if scrub(name) != name:  # records copy the name: it must not be a resident ID number
        raise AccountError("name", "用户名不能含身份证号", "the name may not contain a resident ID number")
    return name


class Accounts:
    def __init__(self, engine: Engine, *, lifetime: dt.timedelta, idle: dt.timedelta):
        self.engine = engine
        self.lifetime = lifetime
        self.idle = idle

    # -- users ---------------------------------------------------------------------
    def create_user(self, name: str, role: Role, scope: Scope, password: str) -> User:
        name = clean_name(name)
        if problem := passwords.password_problem(password):
            raise AccountError("password", problem, "the password is too short or too long")
        row = User(
            id="u_" + uuid7().replace("-", "")[-12:],
            name=name,
            role=str(role),
            locality=scope.code,
            password_hash=passwords.hash_password(password),
            created_at=utcnow(),
        )
        try:
            with writing(self.engine) as conn, conn.begin():
                conn.execute(insert(_USERS).values(**row.model_dump()))
        except IntegrityError:
            raise AccountError("name", f"用户名“{name}”已被使用", "the name is taken") from None
        return row

    def list_users(self, scope: Scope = NATIONAL_SCOPE) -> list[User]:
        """Users whose scope lies within ``scope`` (a scoped administrator sees only those)."""
        q = select(_USERS)
        if not scope.national:
            q = q.where(_USERS.c.locality.like(scope.prefix + "%"))
        with self.engine.connect() as conn:
            return [User.model_validate(r._mapping) for r in conn.execute(q.order_by(_USERS.c.created_at, _USERS.c.id))]

    def disable_user(self, name_or_id: str, scope: Scope = NATIONAL_SCOPE) -> User | None:
        """Disable a user within ``scope`` and end every session of theirs; None for an unknown user
        and for one outside the scope alike."""
        now = utcnow()
        with writing(self.engine) as conn, conn.begin():
            row = conn.execute(select(_USERS).where((_USERS.c.name == name_or_id) | (_USERS.c.id == name_or_id))).first()
            if row is None or not scope.covers(row.locality):
                return None
            conn.execute(update(_USERS).where(_USERS.c.id == row.id, _USERS.c.disabled_at.is_(None)).values(disabled_at=now))
            conn.execute(
                update(_SESSIONS).where(_SESSIONS.c.user_id == row.id, _SESSIONS.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            row = conn.execute(select(_USERS).where(_USERS.c.id == row.id)).first()
        return User.model_validate(row._mapping)

    # -- signing in ------------------------------------------------------------------
    def sign_in(self, name: str, password: str, address: str) -> SignIn:
        """Check a name and password, throttled per name and per client address. The answer never
        says whether the name exists: unknown, disabled and wrong password are one refusal."""
        subjects = (throttle.name_subject(name), throttle.address_subject(address))
        now = utcnow()
        with self.engine.connect() as conn:
            locks = conn.execute(select(_THROTTLE.c.locked_until).where(_THROTTLE.c.subject.in_(subjects))).scalars()
            until = max((as_utc(t) for t in locks if t is not None and as_utc(t) > now), default=None)
            if until is not None:
                return SignIn(retry_after=max(1, int((until - now).total_seconds() + 0.999)))
            name = name.strip()
            user = None
            if len(name) <= NAME_MAX:
                user = conn.execute(select(_USERS).where(_USERS.c.name == name, _USERS.c.disabled_at.is_(None))).first()
        # The slow hash runs outside any transaction: it must not hold SQLite's write lock.
        if not passwords.verify(user.password_hash if user else None, password[: passwords.MAX_LENGTH + 1]):
            self._failed(subjects, now)
            return SignIn()
        with writing(self.engine) as conn, conn.begin():
            values = {"last_sign_in_at": now}
            if passwords.needs_rehash(user.password_hash):
                values["password_hash"] = passwords.hash_password(password)
            conn.execute(update(_USERS).where(_USERS.c.id == user.id).values(**values))
            # The name's count starts again; the address's does not (one's own account must not
            # become a way to keep guessing at others from the same machine).
            conn.execute(delete(_THROTTLE).where(_THROTTLE.c.subject == subjects[0]))
        return SignIn(user=User.model_validate({**user._mapping, **values}))

    def _failed(self, subjects: tuple[str, ...], now: dt.datetime) -> None:
        with writing(self.engine) as conn, conn.begin():
            # Forgotten failures go, so names sprayed at the form do not pile up in the table.
            conn.execute(
                delete(_THROTTLE).where(
                    _THROTTLE.c.last_failure_at < now - throttle.FORGET,
                    _THROTTLE.c.locked_until.is_(None) | (_THROTTLE.c.locked_until < now),
                )
            )
            for subject in subjects:
                row = conn.execute(select(_THROTTLE).where(_THROTTLE.c.subject == subject)).first()
                recent = row is not None and as_utc(row.last_failure_at) > now - throttle.FORGET
                failures = (row.failures if recent else 0) + 1
                lock = throttle.lock_after(failures, throttle.free_failures(subject))
                values = {"failures": failures, "last_failure_at": now, "locked_until": now + lock if lock else None}
                if row is None:
                    conn.execute(insert(_THROTTLE).values(subject=subject, **values))
                else:
                    conn.execute(update(_THROTTLE).where(_THROTTLE.c.subject == subject).values(**values))

    # -- sessions ------------------------------------------------------------------
    def open_session(self, user_id: str) -> str:
        """A new session for the user; returns the cookie's value (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with writing(self.engine) as conn, conn.begin():
            conn.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at < now))  # ended sessions go with time
            conn.execute(
                insert(_SESSIONS).values(
                    id_hash=_hash_session(token), user_id=user_id, created_at=now, last_seen_at=now, expires_at=now + self.lifetime
                )
            )
        return token

    def caller_for_session(self, token: str) -> Caller | None:
        """The person behind a live session: not revoked, not expired, not idle too long, user not disabled."""
        key = _hash_session(token)
        now = utcnow()
        q = (
            select(_SESSIONS.c.last_seen_at, _USERS.c.id, _USERS.c.name, _USERS.c.role, _USERS.c.locality)
            .join(_USERS, _USERS.c.id == _SESSIONS.c.user_id)
            .where(
                _SESSIONS.c.id_hash == key,
                _SESSIONS.c.revoked_at.is_(None),
                _SESSIONS.c.expires_at > now,
                _SESSIONS.c.last_seen_at > now - self.idle,
                _USERS.c.disabled_at.is_(None),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        if as_utc(row.last_seen_at) < now - _TOUCH_EVERY:
            with writing(self.engine) as conn, conn.begin():
                conn.execute(update(_SESSIONS).where(_SESSIONS.c.id_hash == key).values(last_seen_at=now))
        return Caller(row.id, row.name, Role(row.role), Scope.of(row.locality))

    def close_session(self, token: str) -> None:
        with writing(self.engine) as conn, conn.begin():
            conn.execute(
                update(_SESSIONS)
                .where(_SESSIONS.c.id_hash == _hash_session(token), _SESSIONS.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
