"""Small SQL helpers shared by the activities: dialect-aware INSERT ... ON CONFLICT."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from core.db import Database


def insert(db: Database, table: Any) -> Any:
    """An INSERT that supports `on_conflict_do_nothing/do_update` on both databases."""
    module = sqlite if db.is_sqlite else postgresql
    return module.insert(table)


def stable_id(*parts: str) -> str:
    """The same id on every retry of the same write (a UUIDv5 of `parts`)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "canhbao:" + ":".join(parts)))
