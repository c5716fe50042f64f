"""Database engines: async for the API and activities, sync for alembic and the CLI, and
what counts as "the database cannot be reached" (`unreachable`) as opposed to "every
connection of this process is busy" (`overloaded`), which intake and the API's error
handlers act on differently."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from core.settings import Settings, async_url, sync_url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _make_parent_dir(sqlite_url: str) -> None:
    """SQLite creates the file but not its folder (var/ on a fresh clone)."""
    path = sqlite_url.split(":///", 1)[1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


# SQLSTATEs of a server that answered but cannot serve now: connection exceptions (class
# 08), shutting down or starting up (57P01-57P03). Every other SQLSTATE is an answer.
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def overloaded(exc: BaseException) -> bool:
    """Whether `exc` is a pool checkout timeout: every connection of this process's pool
    stayed busy for CANHBAO_DB_POOL_TIMEOUT_S. The database answers; there is more work
    than connections. Not an outage: the caller sheds the request (503 `overloaded`) and
    nothing switches to the no-database path."""
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    cause = exc.__cause__
    return cause is not None and cause is not exc and overloaded(cause)


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` means the database could not be reached or dropped the connection
    (refused, reset, DNS, connect timeout, server shut down), as opposed to an error the
    server answered with (constraint, syntax, deadlock, statement timeout...), which a
    retry of the same request does not cure by itself, or a busy pool (`overloaded`).

    Looks through SQLAlchemy's wrapper at the driver's error: psycopg gives client-side
    connection failures no SQLSTATE."""
    if isinstance(exc, sa_exc.TimeoutError):  # the pool was busy, not the server gone
        return False
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if not isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return False
        orig = exc.orig
        if orig is None or not hasattr(orig, "sqlstate"):  # not psycopg (SQLite)
            return False
        state = getattr(orig, "sqlstate", None)
        return state is None or str(state).startswith(_UNREACHABLE_SQLSTATES)
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    cause = exc.__cause__
    return cause is not None and cause is not exc and unreachable(cause)


def make_async_engine(url: str, pool_size: int = 10, connect_timeout_s: int = 10,
                      pool_timeout_s: float = 10.0) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        _make_parent_dir(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        pool_timeout=pool_timeout_s,
        connect_args={"connect_timeout": connect_timeout_s},
    )


def make_sync_engine(url: str) -> Engine:
    url = sync_url(url)
    if url.startswith("sqlite"):
        _make_parent_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """One async engine and its session factory, and when it was last found unreachable
    (`note_unreachable`; `recently_unreachable` for `retry_s` seconds after)."""

    def __init__(self, url: str, pool_size: int = 10, connect_timeout_s: int = 10,
                 retry_s: float = 5.0, pool_timeout_s: float = 10.0) -> None:
        self.url = async_url(url)
        self.engine = make_async_engine(url, pool_size, connect_timeout_s, pool_timeout_s)
        self.sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self.retry_s = retry_s
        self._unreachable_at = float("-inf")

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url, settings.db_pool_size,
                   settings.db_connect_timeout_s, settings.db_retry_s,
                   settings.db_pool_timeout_s)

    def note_unreachable(self) -> None:
        """Remember that a call just failed because the database cannot be reached."""
        self._unreachable_at = time.monotonic()

    def note_reachable(self) -> None:
        self._unreachable_at = float("-inf")

    def recently_unreachable(self) -> bool:
        """Whether the database was found unreachable less than `retry_s` seconds ago
        (intake then does not wait for a connection that will not come)."""
        return time.monotonic() - self._unreachable_at < self.retry_s

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
