"""The full stack for API tests: the app (create_app, lifespan run by asgi-lifespan) on
PostgreSQL, a real worker from worker.build_worker on the Temporal dev server with a fresh
task queue, and a few staff users (created once: argon2 is slow)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from api.auth import make_token
from api.infra import Infra, infra_of
from app import create_app
from core import seed
from core.db import Database, make_sync_engine
from core.settings import Settings
from schema.tables import Unit, User, Ward
from tests.images import heic_claiming, real_image

PASSWORD = "test-password-123"
SECRET = "test-secret-key-for-api-tests-0123456789"

# Bytes that the `filetype` package recognises, one per accepted type. Images are real
# (their header must give a size: api/imagecheck.py; "photo" is decodable for renditions);
# videos are only sniffed.
MEDIA: dict[str, tuple[bytes, str]] = {
    "photo": (real_image("JPEG", (64, 48)), "image/jpeg"),
    "jpeg": (real_image("JPEG"), "image/jpeg"),
    "png": (real_image("PNG"), "image/png"),
    "webp": (real_image("WEBP"), "image/webp"),
    "heic": (heic_claiming(4032, 3024), "image/heic"),
    "mp4": (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x01" * 200, "video/mp4"),
    "mov": (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x01" * 200,
            "video/quicktime"),
    "webm": (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3"
             b"\x81\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + b"\x01" * 200,
             "video/webm"),
}

WARD_A = "ben_thanh"  # short codenames of two central wards
WARD_B = "sai_gon"


@dataclass
class Place:
    code: int
    name: str
    lat: float
    lon: float
    unit_id: str


@dataclass
class People:
    places: dict[str, Place]
    users: dict[str, User]


@pytest.fixture(scope="session")
def people(pg_url: str) -> People:
    """operator, supervisor, admin, an officer of ward A and one of ward B."""
    engine = make_sync_engine(pg_url)
    with Session(engine) as s:
        places = {}
        for short in (WARD_A, WARD_B):
            ward = s.exec(select(Ward).where(Ward.short_codename == short)).one()
            unit = s.exec(select(Unit).where(Unit.code == f"cand-{short}")).one()
            places[short] = Place(ward.code, ward.name, ward.lat, ward.lon, unit.id)
        command = s.exec(select(Unit).where(Unit.code == "ttttch")).one()
        hashed = seed.hash_password(PASSWORD)
        users = {
            "operator": seed.ensure_user(s, "t.operator", PASSWORD, "operator", command.id,
                                         "Trực ban thử", hashed),
            "supervisor": seed.ensure_user(s, "t.supervisor", PASSWORD, "supervisor",
                                           command.id, "Chỉ huy thử", hashed),
            "admin": seed.ensure_user(s, "t.admin", PASSWORD, "admin", None, "Quản trị", hashed),
            "officer_a": seed.ensure_user(s, "t.officer.a", PASSWORD, "officer",
                                          places[WARD_A].unit_id, "Cán bộ A", hashed),
            "officer_b": seed.ensure_user(s, "t.officer.b", PASSWORD, "officer",
                                          places[WARD_B].unit_id, "Cán bộ B", hashed),
        }
        s.commit()
        for u in users.values():
            s.refresh(u)
            s.expunge(u)
    engine.dispose()
    return People(places, users)


def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture
def api_settings(make_settings: Callable[..., Settings], temporal_env: WorkflowEnvironment,
                 task_queue: str) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "TEMPORAL_ADDRESS": temporal_address(temporal_env),
            "CANHBAO_TASK_QUEUE": task_queue,
            "CANHBAO_SECRET_KEY": SECRET,
            "CANHBAO_RELAY_INTERVAL_S": 0.2,
        }
        values.update(overrides)
        return make_settings(**values)

    return build


class Stack:
    """The app, its HTTP client, and helpers that speak the API."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, settings: Settings,
                 people: People) -> None:
        self.app = app
        self.client = client
        self.settings = settings
        self.people = people

    @property
    def infra(self) -> Infra:
        """The app's one Infra (api/infra.py): its database, storage, Temporal holder."""
        return infra_of(self.app)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(self.settings, self.people.users[who])}"}

    def report_body(self, ward: str = WARD_A, **overrides: Any) -> dict[str, Any]:
        place = self.people.places[ward]
        body: dict[str, Any] = {
            "report_id": str(uuid.uuid4()), "category": "crime",
            "description": "Có người giật túi xách trước chợ",
            "location": {"lat": place.lat, "lon": place.lon, "accuracy_m": 15},
            "reporter": {"name": "Nguyễn Văn A", "phone": "0912 345 678"},
        }
        body.update(overrides)
        return body

    async def submit(self, ward: str = WARD_A, **overrides: Any) -> dict[str, Any]:
        r = await self.client.post("/api/v1/reports", json=self.report_body(ward, **overrides))
        assert r.status_code == 202, r.text
        return r.json()

    async def upload(self, kind: str = "jpeg", who: str | None = None) -> dict[str, Any]:
        data, mime = MEDIA[kind]
        r = await self.client.post("/api/v1/attachments",
                                   files={"file": (f"x.{kind}", data, mime)},
                                   headers=self.auth(who) if who else None)
        assert r.status_code == 201, r.text
        return r.json()

    async def act(self, incident_id: str, action: str, who: str,
                  body: dict | None = None, key: str | None = None) -> httpx.Response:
        headers = self.auth(who)
        if key:
            headers["Idempotency-Key"] = key
        return await self.client.post(f"/api/v1/incidents/{incident_id}/actions/{action}",
                                      json=body or {}, headers=headers)

    async def detail(self, incident_id: str, who: str = "operator") -> httpx.Response:
        return await self.client.get(f"/api/v1/incidents/{incident_id}", headers=self.auth(who))

    async def wait_projected(self, incident_id: str, timeout: float = 15) -> None:
        """Until the read model has the incident with its ward (the workflow's locate)."""
        from schema.tables import Incident

        async def located() -> bool:
            async with self.infra.db.session() as s:
                row = await s.get(Incident, incident_id)
                return row is not None and row.ward_code is not None
        await eventually(located, timeout)

    async def routed(self, ward: str = WARD_A, **overrides: Any) -> str:
        """A new incident routed to `ward`'s police; returns its id."""
        accepted = await self.submit(ward, **overrides)
        iid = accepted["incident_id"]
        await self.wait_projected(iid)
        r = await self.act(iid, "classify", "operator", {"category": "crime", "priority": 2})
        assert r.status_code == 200, r.text
        r = await self.act(iid, "route", "operator",
                           {"ward_code": self.people.places[ward].code})
        assert r.status_code == 200, r.text
        return iid


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15,
                     interval: float = 0.05) -> None:
    """Poll `check` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest_asyncio.fixture
async def worker_db(pg_url: str) -> AsyncIterator[Database]:
    db = Database(pg_url, pool_size=5)
    yield db
    await db.dispose()


@pytest_asyncio.fixture
async def make_stack(api_settings: Callable[..., Settings], temporal_env: WorkflowEnvironment,
                     people: People, worker_db: Database
                     ) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """Build stacks (app + worker) with setting overrides; everything stops at the end."""
    from worker import build_worker

    closers: list[Any] = []

    async def build(with_worker: bool = True, **overrides: Any) -> Stack:
        settings = api_settings(**overrides)
        app = create_app(settings)
        manager = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        closers.append(manager)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                   base_url="http://testserver", timeout=60)
        closers.append(client)
        if with_worker:
            worker = build_worker(temporal_env.client, settings, worker_db,
                                  task_queue=settings.task_queue)
            await worker.__aenter__()
            closers.append(worker)
        return Stack(app, client, settings, people)

    yield build
    for closer in reversed(closers):
        await closer.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    return await make_stack()
