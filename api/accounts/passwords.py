"""Password hashing (argon2id) and generated passwords.

The cost is OWASP's first argon2id setting (19 MiB, 2 passes, 1 lane): about 70 ms on one busy core
of this 2-core machine, against 700 ms for argon2-cffi's default (64 MiB, 3 passes, 4 lanes) while
the workers compete for the same cores. A stored hash carries its own cost; a hash made with another
cost is redone at the next sign-in (``needs_rehash``)."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 200  # argon2 takes any length; this bounds what one sign-in can make the server hash
# No 0/O, 1/l/I: a generated password is read off a screen and typed in by hand.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``. Without a stored hash (no such user) a hash is still
    checked, so that an unknown name takes as long to refuse as a wrong password."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    """Four groups of four characters (about 79 bits), e.g. ``k7mq-x3ph-…``."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))


def password_problem(password: str) -> str | None:
    """Why a chosen password is refused (Chinese), or None."""
    if len(password) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 个字符"
    if len(password) > MAX_LENGTH:
        return f"密码不能超过 {MAX_LENGTH} 个字符"
    if not password.strip():
        return "密码不能全是空格"
    return None
