"""The column types and defaults every table module shares: UTC datetimes on PostgreSQL
and SQLite, big-integer keys, uuid ids.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, TypeDecorator
from sqlmodel import Field

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BIGINT_PK = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on both databases (SQLite keeps no zone: we store UTC and put
    the zone back on the way out)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utc_field(**kw: Any) -> Any:
    """A UTC datetime column (`Field` keywords)."""
    return Field(sa_type=UTCDateTime(timezone=True), **kw)


def new_id() -> str:
    return str(uuid.uuid4())
