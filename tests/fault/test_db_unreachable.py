"""What counts as "the database cannot be reached" (core.db.unreachable): only failures
to reach it, never an error the server answered with, nor a busy pool (core.db.overloaded,
issue #19: a burst is not an outage)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

from core.db import overloaded, unreachable


def _wrapped(orig: BaseException, cls: type = sa_exc.OperationalError) -> BaseException:
    return cls("SELECT 1", {}, orig)


@pytest.mark.parametrize("error", [
    _wrapped(psycopg.OperationalError("connection refused")),
    _wrapped(psycopg.errors.ConnectionTimeout("timeout expired")),
    _wrapped(psycopg.InterfaceError("the connection is closed"), sa_exc.InterfaceError),
    _wrapped(pg_errors.AdminShutdown("terminating connection")),
    ConnectionResetError("reset"),
])
def test_unreachable(error: BaseException) -> None:
    assert unreachable(error)


@pytest.mark.parametrize("error", [
    _wrapped(pg_errors.DeadlockDetected("deadlock")),
    _wrapped(pg_errors.QueryCanceled("statement timeout")),
    _wrapped(pg_errors.UniqueViolation("dup"), sa_exc.IntegrityError),
    _wrapped(pg_errors.UndefinedTable("no table"), sa_exc.ProgrammingError),
    ValueError("not a database error"),
])
def test_answered_errors_are_not_unreachable(error: BaseException) -> None:
    assert not unreachable(error)


def _caused_by(cause: BaseException) -> BaseException:
    try:
        raise RuntimeError("while storing") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize("error", [
    sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    _caused_by(sa_exc.TimeoutError("QueuePool limit reached")),
])
def test_a_busy_pool_is_overload_not_unreachable(error: BaseException) -> None:
    assert overloaded(error) and not unreachable(error)


@pytest.mark.parametrize("error", [
    _wrapped(psycopg.OperationalError("connection refused")),
    _wrapped(pg_errors.QueryCanceled("statement timeout")),
    TimeoutError("connect timed out"),
])
def test_other_failures_are_not_overload(error: BaseException) -> None:
    assert not overloaded(error)
