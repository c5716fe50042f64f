"""A live CanhBao (uvicorn + worker) for the browser tests, and phone- and desktop-sized
Chromium (the steps the tests share are in tests/web/steps.py).

The app and the worker run in one background thread with its own event loop, so the tests
can use Playwright's sync API. The worker listens on a fresh task queue of the session's
Temporal dev server; the app writes to the test PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from core import seed
from core.db import Database, make_sync_engine
from core.serving import uvicorn_options
from core.settings import Settings
from core.temporal import connect
from tests.conftest import NO_FLOOD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
    "locale": "vi-VN",
    "timezone_id": "Asia/Ho_Chi_Minh",
}
DESKTOP = {"viewport": {"width": 1440, "height": 900}, "locale": "vi-VN",
           "timezone_id": "Asia/Ho_Chi_Minh"}
# Near Ben Thanh market.
HERE = {"latitude": 10.7725, "longitude": 106.6980, "accuracy": 35}
# The password the browser tests give the demo accounts (core.seed.ensure_demo_users).
DEMO_PASSWORD = "demo-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Stack(threading.Thread):
    """uvicorn serving create_app(settings) and a Temporal worker, in one event loop."""

    def __init__(self, settings: Settings, port: int) -> None:
        super().__init__(name="canhbao-live", daemon=True)
        self.settings = settings
        self.port = port
        self.server: uvicorn.Server | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by the fixture
            self.error = exc

    async def _main(self) -> None:
        from app import create_app
        from worker import build_worker

        client = await connect(self.settings)
        db = Database.from_settings(self.settings)
        worker = build_worker(client, self.settings, db)
        # No background relay: reports start their workflow at once, and a relay here
        # could pick up other tests' pending reports.
        app = create_app(self.settings, run_relay=False)
        # The options every launcher uses (proxy headers only from listed proxies).
        options = uvicorn_options(self.settings) | {"host": "127.0.0.1", "port": self.port}
        config = uvicorn.Config(app, log_level="warning", **options)
        self.server = uvicorn.Server(config)
        try:
            async with worker:
                await self.server.serve()
        finally:
            await db.dispose()


@dataclass
class LiveServer:
    url: str
    settings: Settings
    engine: Engine

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).mappings())

    def wait_for(self, sql: str, predicate: Callable[[Any], bool] = bool,
                 timeout: float = 20.0, **params: Any) -> Any:
        """Poll `sql` (a scalar) until predicate(value) holds; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(sql, **params)
            if predicate(value):
                return value
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {sql!r} {params} (last value {value!r})")

    def wait_for_incident(self, incident_id: str, located: bool = False) -> None:
        """Until the read model has the incident (and, when `located`, its ward)."""
        located_sql = " and ward_code is not null" if located else ""
        self.wait_for("select count(*) from incidents where id = :i" + located_sql,
                      lambda n: n == 1, i=incident_id)

    def new_staff(self, role: str) -> tuple[str, str]:
        """A fresh staff account of `role` (operator, supervisor, …): (username, password)."""
        username, password = f"web-{role}-{uuid.uuid4().hex[:6]}", "staff-password-1"
        with Session(self.engine) as session:
            seed.ensure_user(session, username, password, role)
            session.commit()
        return username, password


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    """Settings of a module's live server beside the defaults below (a module overrides
    this fixture to change them)."""
    return {}


@pytest.fixture(scope="module")
def live_server(
    pg_url: str, temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory,
    wards_geojson: Path, live_overrides: dict[str, Any],
) -> Iterator[LiveServer]:
    address = temporal_env.client.service_client.config.target_host
    settings = Settings(**{
        "CANHBAO_DEMO": True,
        "DATABASE_URL": pg_url,
        "CANHBAO_VAR_DIR": tmp_path_factory.mktemp("web-var"),
        "CANHBAO_WARDS_GEOJSON": str(wards_geojson),
        "TEMPORAL_ADDRESS": address,
        "CANHBAO_TASK_QUEUE": f"web-{uuid.uuid4()}",
        **NO_FLOOD,
        **live_overrides,
    })
    port = _free_port()
    stack = _Stack(settings, port)
    stack.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if stack.error is not None or not stack.is_alive():
            pytest.fail(f"the live server did not start: {stack.error!r}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("the live server did not answer /healthz within 30 s")
        time.sleep(0.1)
    engine = make_sync_engine(pg_url)
    yield LiveServer(url=url, settings=settings, engine=engine)
    if stack.server is not None:
        stack.server.should_exit = True
    stack.join(timeout=20)
    engine.dispose()


@pytest.fixture(scope="module")
def playwright_instance(live_server: LiveServer) -> Iterator[Playwright]:
    """Playwright's sync API marks the main thread's loop as running while it is open, so
    it is opened after the async fixtures it needs and closed at the end of the module."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


def _contexts(browser: Browser,
              defaults: dict[str, Any]) -> Iterator[Callable[..., BrowserContext]]:
    """A factory of browser contexts with `defaults` (a call's keywords override them) and
    a 15 s default timeout; every context it made is closed afterwards."""
    made: list[BrowserContext] = []

    def make(**overrides: Any) -> BrowserContext:
        ctx = browser.new_context(**{**defaults, **overrides})
        ctx.set_default_timeout(15_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture
def phone(browser: Browser, live_server: LiveServer) -> Iterator[Callable[..., BrowserContext]]:
    """Factory for phone-sized browser contexts (GPS granted at HERE unless told)."""
    yield from _contexts(browser, {**PHONE, "base_url": live_server.url,
                                   "geolocation": HERE, "permissions": ["geolocation"]})


@pytest.fixture
def desktop(browser: Browser,
            live_server: LiveServer) -> Iterator[Callable[..., BrowserContext]]:
    """Factory for desktop-sized browser contexts (the staff console)."""
    yield from _contexts(browser, {**DESKTOP, "base_url": live_server.url})


@pytest.fixture(scope="module")
def staff(live_server: LiveServer) -> dict[str, Any]:
    """The demo accounts (password DEMO_PASSWORD), the ward that contains HERE (`ward`: the
    answer of /api/v1/wards/locate) with its officer's username (`officer`), and an officer
    of another ward (`other_officer`)."""
    seed.ensure_demo_users(live_server.engine, DEMO_PASSWORD)
    with httpx.Client(base_url=live_server.url) as client:
        ward = client.get("/api/v1/wards/locate",
                          params={"lat": HERE["latitude"], "lon": HERE["longitude"]}).json()
    short = live_server.scalar("select short_codename from wards where code = :c", c=ward["code"])
    other = live_server.scalar(
        "select u.username from users u join units n on n.id = u.unit_id "
        "where n.kind = 'ward_police' and n.ward_code <> :c order by u.username limit 1",
        c=ward["code"])
    return {"ward": ward, "officer": f"officer.{short}", "other_officer": other}


def tiny_png() -> bytes:
    """A real 2x2 PNG (the server checks the type by its bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    raw = b"".join(b"\0" + b"\xc0\x20\x20" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
