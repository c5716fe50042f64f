"""Accounts (token, session + CSRF, throttling) and operations (health, readiness,
metrics, error language)."""

from __future__ import annotations

import socket

from sqlalchemy import delete

from api import throttle
from schema.tables import LoginAttempt
from tests.api.conftest import PASSWORD, Stack


async def test_password_token_flow(stack: Stack) -> None:
    r = await stack.client.post("/api/v1/auth/token",
                                data={"username": "t.operator", "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert r.json()["token_type"] == "bearer"
    me = await stack.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "operator" and me.json()["username"] == "t.operator"
    r = await stack.client.post("/api/v1/auth/token",
                                data={"username": "t.operator", "password": "wrong"},
                                headers={"Accept-Language": "en"})
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_credentials", "detail": "Wrong username or password"}
    r = await stack.client.post("/api/v1/auth/token",
                                data={"username": "nobody", "password": "x"})
    assert r.status_code == 401 and r.json()["detail"] == "Sai tên đăng nhập hoặc mật khẩu"
    assert (await stack.client.post("/api/v1/auth/token", data={})).status_code == 422


async def test_repeated_failures_are_throttled(stack: Stack) -> None:
    for _ in range(throttle.PAIR.free):
        r = await stack.client.post("/api/v1/auth/token",
                                    data={"username": "t.supervisor", "password": "bad"})
        assert r.status_code == 401
    # Now even the right password waits (from this address: see test_accounts.py).
    r = await stack.client.post("/api/v1/auth/token",
                                data={"username": "t.supervisor", "password": PASSWORD})
    assert r.status_code == 429
    assert r.json()["error"] == "too_many_attempts" and "giây" in r.json()["detail"]
    assert int(r.headers["retry-after"]) > 0
    # Other accounts are not affected.
    r = await stack.client.post("/api/v1/auth/token",
                                data={"username": "t.admin", "password": PASSWORD})
    assert r.status_code == 200
    async with stack.infra.db.session() as s:
        await s.execute(delete(LoginAttempt).where(LoginAttempt.username == "t.supervisor"))
        await s.commit()


async def test_browser_session_needs_csrf_on_changes(stack: Stack) -> None:
    r = await stack.client.post("/api/v1/auth/login",
                                data={"username": "t.operator", "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    assert "canhbao_session" in r.cookies
    cookies = {"canhbao_session": r.cookies["canhbao_session"]}
    stack.client.cookies.update(cookies)
    try:
        me = await stack.client.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["csrf_token"]
        iid = (await stack.submit())["incident_id"]
        await stack.wait_projected(iid)
        url = f"/api/v1/incidents/{iid}/actions/note"
        r = await stack.client.post(url, json={"text": "không có CSRF"})
        assert r.status_code == 403 and r.json()["error"] == "csrf_failed"
        r = await stack.client.post(url, json={"text": "sai CSRF"},
                                    headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
        r = await stack.client.post(url, json={"text": "có CSRF"},
                                    headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        r = await stack.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204
    finally:
        stack.client.cookies.clear()
    # A redirecting login for plain HTML forms.
    r = await stack.client.post("/api/v1/auth/login",
                                data={"username": "t.operator", "password": PASSWORD,
                                      "next": "/console"})
    assert r.status_code == 303 and r.headers["location"] == "/console"
    stack.client.cookies.clear()


async def test_health_readiness_and_metrics(stack: Stack) -> None:
    assert (await stack.client.get("/healthz")).json() == {"status": "ok"}
    r = await stack.client.get("/readyz")
    assert r.status_code == 200, r.text
    await stack.submit()
    text = (await stack.client.get("/metrics")).text
    for name in ("canhbao_reports_received_total", "canhbao_actions_total",
                 "canhbao_http_request_duration_seconds_bucket", "canhbao_open_alerts",
                 "canhbao_intake_outbox_pending"):
        assert name in text, name
    assert 'route="/api/v1/reports"' in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_readyz_names_what_is_down(make_stack) -> None:
    stack = await make_stack(with_worker=False)
    stack.infra.temporal.point_at(f"127.0.0.1:{_closed_port()}")
    r = await stack.client.get("/readyz", headers={"Accept-Language": "en"})
    assert r.status_code == 503
    assert r.json()["down"] == ["temporal"] and "temporal" in r.json()["detail"]
    assert r.json()["error"] == "not_ready"


async def test_unknown_paths_answer_json_in_both_languages(stack: Stack) -> None:
    r = await stack.client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "not_found",
                                                 "detail": "Không tìm thấy"}
    r = await stack.client.get("/api/v1/nothing-here", headers={"Accept-Language": "en"})
    assert r.json() == {"error": "not_found", "detail": "Not found"}
    r = await stack.client.delete("/api/v1/reports")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


async def test_docs_are_served_without_a_cdn(stack: Stack) -> None:
    r = await stack.client.get("/docs")
    assert r.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in r.text
    assert "cdn" not in r.text.lower()
    js = await stack.client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert (await stack.client.get("/docs-assets/package.json")).status_code == 404
    spec = (await stack.client.get("/openapi.json")).json()
    assert "/api/v1/reports" in spec["paths"] and "/open311/v2/requests.json" in spec["paths"]
