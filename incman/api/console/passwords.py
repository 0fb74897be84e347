"""Console passwords: Argon2id hashes (argon2-cffi) kept in the configuration's `users:`.

`python -m incman.api.console.make_password` makes one."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher()
# Compared against when the user does not exist, so that the answer takes as long.
_DUMMY = HASHER.hash("incman: no such user")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the hash ("" means: no such user, still slow)."""
    try:
        return HASHER.verify(password_hash or _DUMMY, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False
