"""Intake and the API while the database is unreachable (a TCP proxy in front of the shared
PostgreSQL is cut, for the API and the worker alike; the server itself keeps running).

- Reports are accepted (202) straight into their workflows; when the database returns,
  the projection writes every report row, the tracking pages work, nothing is doubled.
- With Temporal down as well: 503 with Retry-After, and nothing is half stored.
- Uploads, tracking and staff calls answer 503 with Retry-After, never 500.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from bench.faults.proxy import CutProxy, free_port
from core.db import Database
from schema.ids import UNCHECKED_TRACKING_LENGTH, workflow_id
from schema.tables import Incident, Outbox, Report
from tests.api.conftest import MEDIA, Stack, eventually


@pytest_asyncio.fixture
async def proxy(pg_url: str) -> AsyncIterator[CutProxy]:
    url = make_url(pg_url)
    p = CutProxy(url.host or "127.0.0.1", url.port or 5432)
    yield p
    p.close()


def _through(pg_url: str, proxy: CutProxy) -> str:
    return make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)


@pytest_asyncio.fixture
async def proxied_stack(make_stack: Callable[..., Awaitable[Stack]],
                        proxy: CutProxy,
                        pg_url: str, temporal_env: WorkflowEnvironment
                        ) -> AsyncIterator[Stack]:
    """An app and a worker that both reach PostgreSQL through the proxy only; every answer
    is checked for a 500."""
    from worker import build_worker

    url = _through(pg_url, proxy)
    stack = await make_stack(with_worker=False, DATABASE_URL=url,
                             CANHBAO_DB_CONNECT_TIMEOUT_S=2, CANHBAO_DB_RETRY_S=1)
    statuses: list[tuple[str, int]] = []

    async def record(response: httpx.Response) -> None:
        statuses.append((response.request.url.path, response.status_code))
    stack.client.event_hooks["response"].append(record)
    db = Database(url, pool_size=5, connect_timeout_s=2)
    worker = build_worker(temporal_env.client, stack.settings, db)
    async with worker:
        yield stack
    await db.dispose()
    assert not [s for s in statuses if s[1] >= 500 and s[1] != 503], statuses


async def _count(pg: Database, model: Any, ids: list[str]) -> int:
    async with pg.session() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(
            model.id.in_(ids) if model is not Outbox else Outbox.report_id.in_(ids))
        )).scalar_one())


async def test_reports_accepted_while_database_unreachable(
        proxied_stack: Stack, proxy: CutProxy, worker_db: Database,
        temporal_env: WorkflowEnvironment) -> None:
    stack = proxied_stack
    before = await stack.submit()  # the usual path, to warm the pools up
    await stack.wait_projected(before["incident_id"], 30)
    proxy.cut()

    bodies = [stack.report_body() for _ in range(10)]
    answers = []
    for body in bodies:
        r = await stack.client.post("/api/v1/reports", json=body)
        assert r.status_code == 202, r.text
        answers.append(r.json())
    ids = [a["incident_id"] for a in answers]
    assert ids == [b["report_id"] for b in bodies]
    # Drawn without a collision check: longer codes, also for the first one, the request
    # that found the database gone (before any commit was sent: nothing was stored).
    lengths = [len(a["tracking_code"]) for a in answers]
    assert set(lengths) == {UNCHECKED_TRACKING_LENGTH}, lengths
    for a in answers:  # each one has its workflow already
        described = await temporal_env.client.get_workflow_handle(
            workflow_id(a["incident_id"])).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING

    # The same report again while the database is down: the same answer; another body: 409.
    again = await stack.client.post("/api/v1/reports", json=bodies[3])
    assert again.status_code == 202 and again.json() == answers[3]
    other = await stack.client.post("/api/v1/reports", json={
        **bodies[3], "description": "Một tin báo khác"})
    assert other.status_code == 409 and other.json()["error"] == "report_id_conflict"
    assert answers[3]["tracking_token"] not in other.text

    # Everything that needs the database answers 503 with Retry-After, never 500.
    tracked = await stack.client.get(f"/api/v1/track/{answers[0]['tracking_token']}")
    assert tracked.status_code == 503 and tracked.headers["Retry-After"]
    assert tracked.json()["error"] == "database_unavailable"
    listed = await stack.client.get("/api/v1/incidents", headers=stack.auth("operator"))
    assert listed.status_code == 503 and listed.headers["Retry-After"]
    english = await stack.client.get(f"/api/v1/track/{answers[0]['tracking_token']}",
                                     headers={"Accept-Language": "en"})
    assert "database" in english.json()["detail"]

    # Still nothing in the database (it was really out of reach).
    assert await _count(worker_db, Report, ids) == 0

    proxy.restore()

    async def all_rows() -> bool:
        return (await _count(worker_db, Report, ids) == 10
                and await _count(worker_db, Incident, ids) == 10)
    await eventually(all_rows, 90, interval=0.5)

    async def tracking_works() -> bool:
        for a in answers:
            r = await stack.client.get(f"/api/v1/track/{a['tracking_token']}")
            if r.status_code != 200:
                return False
            assert r.json()["tracking_code"] == a["tracking_code"]
        return True
    await eventually(tracking_works, 30, interval=0.5)

    # Nothing doubled, nothing left for the relay to start.
    assert await _count(worker_db, Report, ids) == 10
    async with worker_db.session() as s:
        outbox = (await s.execute(select(Outbox).where(Outbox.report_id.in_(ids)))).scalars().all()
        codes = (await s.execute(select(Incident.tracking_code).where(Incident.id.in_(ids))
                                 )).scalars().all()
    assert len(outbox) == 10 and all(o.started_at is not None for o in outbox)
    assert sorted(codes) == sorted(a["tracking_code"] for a in answers)
    assert await stack.infra.starter.relay_once() == 0
    for a in answers:
        handle = temporal_env.client.get_workflow_handle(workflow_id(a["incident_id"]))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    # The same report once more, now from the database: still the first answer.
    again = await stack.client.post("/api/v1/reports", json=bodies[5])
    assert again.status_code == 202 and again.json() == answers[5]
    # Staff see it like any other report.
    detail = await stack.detail(ids[0])
    assert detail.status_code == 200 and detail.json()["description"] == bodies[0]["description"]


async def test_both_stores_down_refuses_and_stores_nothing(
        proxied_stack: Stack, proxy: CutProxy, worker_db: Database,
        temporal_env: WorkflowEnvironment) -> None:
    stack = proxied_stack
    live = stack.infra.temporal.address
    stack.infra.temporal.point_at(f"127.0.0.1:{free_port()}")
    proxy.cut()
    body = stack.report_body()
    r = await stack.client.post("/api/v1/reports", json=body)
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"] == "unavailable" and r.json()["detail"]
    english = await stack.client.post("/api/v1/reports", json=body,
                                      headers={"Accept-Language": "en"})
    assert english.status_code == 503 and "sent again" in english.json()["detail"]

    proxy.restore()
    assert await _count(worker_db, Report, [body["report_id"]]) == 0
    with pytest.raises(RPCError):
        await temporal_env.client.get_workflow_handle(workflow_id(body["report_id"])).describe()

    # The phone sends it again once a store is back: accepted once.
    stack.infra.temporal.point_at(live)

    async def accepted() -> bool:
        r = await stack.client.post("/api/v1/reports", json=body)
        return r.status_code == 202
    await eventually(accepted, 30, interval=0.5)
    await stack.wait_projected(body["report_id"], 60)
    assert await _count(worker_db, Report, [body["report_id"]]) == 1


class Unanswering:
    """A Temporal client whose starts get no answer in time (they may have happened)."""

    async def start_workflow(self, *_: Any, **__: Any) -> None:
        raise RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")


async def test_an_unconfirmed_direct_start_is_not_told_nothing_was_stored(
        proxied_stack: Stack, proxy: CutProxy) -> None:
    """The database is down and the direct start got no answer in time: the workflow may
    have the report, so the 503 says it may have been received (send it again with the
    same report_id), not "nothing was stored" (issue #19)."""
    stack = proxied_stack
    proxy.cut()
    stack.infra.temporal.use(Unanswering())  # type: ignore[arg-type]
    r = await stack.client.post("/api/v1/reports", json=stack.report_body(),
                                headers={"Accept-Language": "en"})
    assert r.status_code == 503 and r.headers["Retry-After"], r.text
    assert r.json()["error"] == "database_unavailable"
    assert "may already have been received" in r.json()["detail"]


async def test_uploads_and_reports_with_photos_wait_for_the_database(
        proxied_stack: Stack, proxy: CutProxy, worker_db: Database) -> None:
    stack = proxied_stack
    photo = await stack.upload("jpeg")
    proxy.cut()
    data, mime = MEDIA["jpeg"]
    for _ in range(2):  # found unreachable by the write, then refused before reading
        r = await stack.client.post("/api/v1/attachments", files={"file": ("x.jpg", data, mime)})
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] and r.json()["error"] == "database_unavailable"
    body = stack.report_body(attachments=[photo["attachment_id"]])
    r = await stack.client.post("/api/v1/reports", json=body)
    assert r.status_code == 503 and r.headers["Retry-After"], r.text
    proxy.restore()
    assert await _count(worker_db, Report, [body["report_id"]]) == 0

    async def accepted() -> bool:
        return (await stack.client.post("/api/v1/reports", json=body)).status_code == 202
    await eventually(accepted, 30, interval=0.5)


async def test_resubmitted_after_the_database_returned_before_the_projection(
        make_stack: Callable[..., Awaitable[Stack]], proxy: CutProxy,
        pg_url: str, temporal_env: WorkflowEnvironment,
        worker_db: Database) -> None:
    """The phone lost the 202 given while the database was down and sends the report again
    once it is back, before any worker has projected it: the same answer, one report."""
    from worker import build_worker

    stack = await make_stack(with_worker=False, DATABASE_URL=_through(pg_url, proxy),
                             CANHBAO_DB_CONNECT_TIMEOUT_S=2, CANHBAO_DB_RETRY_S=1)
    proxy.cut()
    body = stack.report_body()
    first = await stack.client.post("/api/v1/reports", json=body)
    assert first.status_code == 202, first.text
    proxy.restore()
    stack.infra.db.note_reachable()
    again = await stack.client.post("/api/v1/reports", json=body)
    assert again.status_code == 202 and again.json() == first.json()
    other = await stack.client.post("/api/v1/reports", json={**body, "description": "Khác"})
    assert other.status_code == 409
    async with build_worker(temporal_env.client, stack.settings, worker_db):
        await stack.wait_projected(body["report_id"], 60)
    tracked = await stack.client.get(f"/api/v1/track/{first.json()['tracking_token']}")
    assert tracked.status_code == 200
    assert tracked.json()["tracking_code"] == first.json()["tracking_code"]
    assert await _count(worker_db, Report, [body["report_id"]]) == 1


async def test_pages_answer_a_page_while_database_unreachable(
        proxied_stack: Stack, proxy: CutProxy) -> None:
    """A browser (no-JS report, tracking page, console, sign-in) gets a small page in its
    language with the same 503 and Retry-After, a reload and the call buttons, not JSON."""
    stack = proxied_stack
    await stack.submit()  # warm the pools up
    proxy.cut()
    r = await stack.client.post("/api/v1/reports", json=stack.report_body())
    assert r.status_code == 202, r.text
    token = r.json()["tracking_token"]
    html = {"Accept": "text/html,application/xhtml+xml"}
    page = await stack.client.get(f"/t/{token}", headers=html)
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert page.headers["Retry-After"] == "1"
    assert "Hệ thống đang tạm gián đoạn lưu trữ" in page.text and "1 giây" in page.text
    assert f'http-equiv="refresh" content="1; url=/t/{token}"' in page.text
    assert all(f'href="tel:{n}"' in page.text for n in (113, 114, 115))
    english = await stack.client.get(f"/t/{token}?lang=en", headers=html)
    assert english.status_code == 503 and "reloads itself in 1 second." in english.text
    login = await stack.client.get("/login?lang=vi", headers=html)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf is not None
    signed = await stack.client.post("/login", headers=html, data={
        "username": "t.operator", "password": "x", "csrf_token": csrf.group(1)})
    assert signed.status_code == 503 and signed.headers["content-type"].startswith(
        "text/html") and "trang sẽ tự tải lại sau 1 giây" in signed.text
    assert "Tin báo của bạn" not in signed.text  # the staff wording
    # The API, and a script asking for JSON, still get JSON.
    api = await stack.client.get(f"/api/v1/track/{token}", headers=html)
    assert api.status_code == 503 and api.json()["error"] == "database_unavailable"


async def test_stored_report_sent_again_while_database_unreachable(
        proxied_stack: Stack, proxy: CutProxy) -> None:
    """Stored with the database, its workflow started from it; sent again (the phone lost
    the 202) while the database is down: 503 database_unavailable that says it may have
    been received and to send again shortly for the link, not "not received"."""
    stack = proxied_stack
    body = stack.report_body()
    first = await stack.client.post("/api/v1/reports", json=body)
    assert first.status_code == 202, first.text
    await stack.wait_projected(first.json()["incident_id"], 30)
    proxy.cut()
    again = await stack.client.post("/api/v1/reports", json=body)
    assert again.status_code == 503 and again.headers["Retry-After"] == "1", again.text
    assert again.json()["error"] == "database_unavailable"
    assert "có thể đã được nhận" in again.json()["detail"]
    english = await stack.client.post("/api/v1/reports", json=body,
                                      headers={"Accept-Language": "en"})
    assert english.status_code == 503
    assert "may already have been received" in english.json()["detail"]
    assert "tracking link" in english.json()["detail"]
