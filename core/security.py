"""Password hashing (argon2id) and "sign out everywhere", shared by the API and the admin
CLI."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import col

from schema.tables import User

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so timing does not tell.
DUMMY_HASH = _hasher.hash("not-a-real-password")


def end_all_sessions(user_id: str) -> Any:
    """The UPDATE that ends every bearer token and browser session of `user_id` (raises
    its token version, which each of them carries; api/sessions.py). For sync and async
    sessions alike; the caller executes and commits."""
    return (update(User).where(col(User.id) == user_id)
            .values(token_version=col(User.token_version) + 1))
