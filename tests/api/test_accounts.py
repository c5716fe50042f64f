"""Accounts under attack (issue #9, 5 and 6): throttling that never locks an account for
everyone, client addresses only from listed proxies, sign-in CSRF, `next` redirects that
stay on the site, revocable tokens and sessions, Secure cookies, demo-mode warning."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import delete, select
from sqlmodel import Session, col
from structlog.testing import capture_logs

from api import sessions, throttle
from api.origin import safe_next
from core import seed
from core.db import make_sync_engine
from core.serving import uvicorn_options
from schema.tables import LoginAttempt, User, utcnow
from tests.api.conftest import PASSWORD, Stack


@pytest.fixture
def account(pg_url: str) -> User:
    """A fresh operator account (its tokens can be revoked without touching others')."""
    engine = make_sync_engine(pg_url)
    with Session(engine) as s:
        user = seed.ensure_user(s, f"acc.{uuid.uuid4().hex[:8]}", PASSWORD, "operator",
                                None, "Tài khoản thử")
        s.commit()
        s.refresh(user)
        s.expunge(user)
    engine.dispose()
    return user


@pytest_asyncio.fixture
async def clean_attempts(stack: Stack) -> AsyncIterator[None]:
    yield
    async with stack.infra.db.session() as s:
        await s.execute(delete(LoginAttempt))
        await s.commit()


def client_from(stack: Stack, address: str) -> httpx.AsyncClient:
    """An HTTP client whose requests come from `address` (as the peer)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app,
                                                           client=(address, 40000)),
                             base_url="http://testserver", timeout=30)


async def _token(client: httpx.AsyncClient, username: str, password: str = PASSWORD
                 ) -> httpx.Response:
    return await client.post("/api/v1/auth/token",
                             data={"username": username, "password": password})


# --- throttling ------------------------------------------------------------------------------
def test_delays_grow_and_stop_at_the_cap() -> None:
    policy = throttle.PAIR
    delays = [policy.delay_s(n) for n in range(0, 20)]
    assert delays[: policy.free] == [0.0] * policy.free
    grown = delays[policy.free:]
    assert grown[0] == policy.base_s and grown[1] == 2 * policy.base_s
    assert all(b >= a for a, b in zip(grown, grown[1:], strict=False))
    assert max(grown) == policy.cap_s and policy.delay_s(10_000) == policy.cap_s


async def test_a_stranger_cannot_lock_an_account(stack: Stack, account: User,
                                                 clean_attempts: None) -> None:
    attacker = client_from(stack, "203.0.113.66")
    owner = client_from(stack, "198.51.100.7")
    async with attacker, owner:
        codes = [(await _token(attacker, account.username, "doan-mo")).status_code
                 for _ in range(throttle.PAIR.free)]
        assert codes == [401] * throttle.PAIR.free
        # The attacker now waits, and the wait is said in seconds, both languages.
        r = await _token(attacker, account.username, PASSWORD)
        assert r.status_code == 429, r.text
        assert r.json()["error"] == "too_many_attempts" and "giây" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= throttle.PAIR.base_s
        r = await attacker.post("/api/v1/auth/token", headers={"Accept-Language": "en"},
                                data={"username": account.username, "password": "x"})
        assert r.status_code == 429 and "Try again in" in r.json()["detail"]
        # The owner, from another address, signs in at once.
        r = await _token(owner, account.username)
        assert r.status_code == 200, r.text


async def test_delays_grow_with_each_failure(stack: Stack, account: User,
                                             clean_attempts: None) -> None:
    db = stack.infra.db
    address, name = "203.0.113.9", account.username
    start = utcnow() - timedelta(minutes=30)
    waits = []
    for n in range(1, 9):
        at = start + timedelta(minutes=n)
        async with db.session() as s:
            throttle.record_failure(s, address, name, now=at)
            await s.commit()
        async with db.session() as s:
            try:
                await throttle.check(s, address, name, now=at)
                waits.append(0)
            except throttle.LoginThrottled as exc:
                waits.append(exc.seconds)
    assert waits[:2] == [0, 0]
    assert waits[2:] == [1, 2, 4, 8, 16, 32]
    # Failures older than the window no longer count.
    async with db.session() as s:
        await throttle.check(s, address, name, now=start + throttle.WINDOW + timedelta(
            minutes=9))
    # A success forgets this address's failures for the account.
    async with db.session() as s:
        await throttle.forget(s, address, name)
        await s.commit()
        await throttle.check(s, address, name, now=start + timedelta(minutes=9))


async def test_one_address_guessing_many_accounts_slows_down(stack: Stack, account: User,
                                                             clean_attempts: None) -> None:
    guesser = client_from(stack, "203.0.113.200")
    other = client_from(stack, "198.51.100.200")
    async with guesser, other:
        for i in range(throttle.ADDRESS.free):
            r = await _token(guesser, f"khong-co-{i}", "x")
            assert r.status_code == 401, (i, r.text)
        r = await _token(guesser, account.username)  # even the right password waits
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert (await _token(other, account.username)).status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _serve(stack: Stack, **overrides: Any) -> tuple[uvicorn.Server, asyncio.Task, str]:
    settings = stack.settings.model_copy(update=overrides)
    options = uvicorn_options(settings) | {"host": "127.0.0.1", "port": _free_port()}
    server = uvicorn.Server(uvicorn.Config(stack.app, lifespan="off", log_level="warning",
                                           **options))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    return server, task, f"http://127.0.0.1:{options['port']}"


async def _failed_from(stack: Stack, base_url: str, username: str, **headers: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client:
        r = await client.post("/api/v1/auth/token", headers=headers,
                              data={"username": username, "password": "sai"})
        assert r.status_code == 401
    async with stack.infra.db.session() as s:
        return (await s.execute(select(col(LoginAttempt.address))
                                .where(col(LoginAttempt.username) == username))).scalar_one()


async def test_forwarded_for_is_believed_only_from_listed_proxies(
        stack: Stack, clean_attempts: None) -> None:
    assert uvicorn_options(stack.settings)["proxy_headers"] is False
    server, task, url = await _serve(stack)
    try:  # by default, a forged header from 127.0.0.1 changes nothing
        assert await _failed_from(stack, url, "xff-1", **{"X-Forwarded-For": "1.2.3.4"}) \
            == "127.0.0.1"
    finally:
        server.should_exit = True
        await task
    server, task, url = await _serve(stack, forwarded_allow_ips="127.0.0.1")
    try:  # a listed proxy says who the client is
        assert await _failed_from(stack, url, "xff-2", **{"X-Forwarded-For": "1.2.3.4"}) \
            == "1.2.3.4"
    finally:
        server.should_exit = True
        await task


# --- sign-in from another site, and where it may send the browser ----------------------------
async def test_login_refuses_other_sites(stack: Stack, account: User) -> None:
    form = {"username": account.username, "password": PASSWORD}
    refused = [{"Origin": "https://evil.example"}, {"Origin": "null"},
               {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
               {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"}]
    for headers in refused:
        r = await stack.client.post("/api/v1/auth/login", data=form, headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"] == "cross_site" and "canhbao_session" not in r.cookies
    allowed = [{}, {"Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin"},
               {"Sec-Fetch-Site": "none"}]
    for headers in allowed:
        r = await stack.client.post("/api/v1/auth/login", data=form, headers=headers)
        assert r.status_code == 200, (headers, r.text)
        stack.client.cookies.clear()


HOSTILE_NEXT = [
    "//evil.example/x", "/\\evil.example/x", "\\\\evil.example", "/%2Fevil.example",
    "/%2fevil.example", "/%5Cevil.example", "/%5cevil.example", "/%252Fevil.example",
    "/%09/evil.example", "/\t/evil.example", "/\n/evil.example", "https://evil.example",
    "javascript:alert(1)", "evil.example", "", "/%2525252F", "/console\\..\\x",
]


def test_next_keeps_only_paths_of_this_site() -> None:
    for value in HOSTILE_NEXT:
        assert safe_next(value) is None, value
    for value in ("/console", "/console?selected=x&state=all", "/officer#top",
                  "/t/abc?msg=info", "/console?q=a%20b"):
        assert safe_next(value) == value


async def test_login_next_never_leaves_the_site(stack: Stack, account: User) -> None:
    for value in HOSTILE_NEXT[:10]:
        r = await stack.client.post("/api/v1/auth/login", data={
            "username": account.username, "password": PASSWORD, "next": value})
        assert r.status_code == 200 and "location" not in r.headers, value
        stack.client.cookies.clear()


# --- revocation -------------------------------------------------------------------------------
async def test_logout_revokes_the_bearer_token_it_is_called_with(stack: Stack,
                                                                  account: User) -> None:
    first = (await _token(stack.client, account.username)).json()["access_token"]
    second = (await _token(stack.client, account.username)).json()["access_token"]
    h1, h2 = ({"Authorization": f"Bearer {t}"} for t in (first, second))
    assert (await stack.client.get("/api/v1/auth/me", headers=h1)).status_code == 200
    assert (await stack.client.post("/api/v1/auth/logout", headers=h1)).status_code == 204
    assert (await stack.client.get("/api/v1/auth/me", headers=h1)).status_code == 401
    assert (await stack.client.get("/api/v1/incidents", headers=h1)).status_code == 401
    # Another sign-in of the same person is not affected; logging out twice is harmless.
    assert (await stack.client.get("/api/v1/auth/me", headers=h2)).status_code == 200
    assert (await stack.client.post("/api/v1/auth/logout", headers=h1)).status_code == 204


async def test_logout_revokes_a_copied_session_cookie(stack: Stack, account: User) -> None:
    r = await stack.client.post("/api/v1/auth/login",
                                data={"username": account.username, "password": PASSWORD})
    cookie, csrf = r.cookies["canhbao_session"], r.json()["csrf_token"]
    stack.client.cookies.clear()
    jar = {"canhbao_session": cookie}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app),
                                 base_url="http://testserver", cookies=jar) as copy:
        assert (await copy.get("/api/v1/auth/me")).status_code == 200
        # Without its CSRF token a session cannot be signed out by someone else's page.
        assert (await copy.post("/api/v1/auth/logout")).status_code == 403
        assert (await copy.get("/api/v1/auth/me")).status_code == 200
        r = await copy.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204 and "canhbao_session" in r.headers["set-cookie"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app),
                                 base_url="http://testserver", cookies=jar) as stolen:
        assert (await stolen.get("/api/v1/auth/me")).status_code == 401


async def test_sign_out_everywhere_ends_every_token_and_session(stack: Stack,
                                                                account: User) -> None:
    token = (await _token(stack.client, account.username)).json()["access_token"]
    r = await stack.client.post("/api/v1/auth/login",
                                data={"username": account.username, "password": PASSWORD})
    jar = {"canhbao_session": r.cookies["canhbao_session"]}
    stack.client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await stack.client.get("/api/v1/auth/me", headers=bearer)).status_code == 200
    async with stack.infra.db.session() as s:
        await sessions.end_all(s, account.id)
        await s.commit()
    assert (await stack.client.get("/api/v1/auth/me", headers=bearer)).status_code == 401
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app),
                                 base_url="http://testserver", cookies=jar) as browser:
        assert (await browser.get("/api/v1/auth/me")).status_code == 401
    # Signing in again works.
    token = (await _token(stack.client, account.username)).json()["access_token"]
    me = await stack.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200


async def test_cookies_are_secure_behind_an_https_public_url(
        make_stack: Callable[..., Awaitable[Stack]], account: User) -> None:
    stack = await make_stack(with_worker=False, CANHBAO_PUBLIC_URL="https://canhbao.example.vn")
    r = await stack.client.post("/api/v1/auth/login",
                                data={"username": account.username, "password": PASSWORD})
    assert r.status_code == 200
    assert "secure" in r.headers["set-cookie"].lower()
    r = await stack.client.get("/login")
    assert "secure" in r.headers["set-cookie"].lower()
    plain = await make_stack(with_worker=False)
    r = await plain.client.post("/api/v1/auth/login",
                                data={"username": account.username, "password": PASSWORD})
    assert "secure" not in r.headers["set-cookie"].lower()


def test_demo_mode_says_its_tokens_can_be_forged(make_settings: Callable[..., Any]) -> None:
    with capture_logs() as logs:
        sessions.warn_if_forgeable(make_settings())
        sessions.warn_if_forgeable(make_settings(CANHBAO_SECRET_KEY="x" * 40))
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and "forge" in warnings[0]["event"]


async def test_the_staff_pages_sign_out_revokes_too(stack: Stack, account: User) -> None:
    r = await stack.client.post("/api/v1/auth/login",
                                data={"username": account.username, "password": PASSWORD})
    jar = {"canhbao_session": r.cookies["canhbao_session"]}
    csrf = r.json()["csrf_token"]
    stack.client.cookies.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app),
                                 base_url="http://testserver", cookies=jar) as browser:
        # Another site's page cannot sign anybody out (auto-submitted form, link): 403,
        # the cookie is not touched and the session stays.
        for attempt in (
                browser.get("/logout", headers={"Sec-Fetch-Site": "cross-site"}),
                browser.post("/logout", headers={"Sec-Fetch-Site": "cross-site"},
                             data={"csrf_token": csrf}),
                browser.post("/logout", headers={"Origin": "https://evil.example"}),
                browser.post("/logout"),  # no token, no header that says where from
                browser.post("/logout", data={"csrf_token": "forged"})):
            r = await attempt
            assert r.status_code == 403 and "set-cookie" not in r.headers, r.text
            assert "Đăng xuất" in r.text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app),
                                 base_url="http://testserver", cookies=jar) as browser:
        assert (await browser.get("/api/v1/auth/me")).status_code == 200
        r = await browser.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app),
                                 base_url="http://testserver", cookies=jar) as stolen:
        assert (await stolen.get("/api/v1/auth/me")).status_code == 401


async def test_an_open_event_stream_ends_when_its_session_is_revoked(
        stack: Stack, account: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.routes import events

    monkeypatch.setattr(events, "SESSION_RECHECK_S", 0.2)
    monkeypatch.setattr(events, "POLL_S", 0.05)
    token = (await _token(stack.client, account.username)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    started = loop.time()
    stream = asyncio.create_task(stack.client.get("/api/v1/events?max_seconds=30",
                                                  headers=bearer))
    await asyncio.sleep(0.5)
    assert not stream.done()
    assert (await stack.client.post("/api/v1/auth/logout", headers=bearer)).status_code == 204
    r = await asyncio.wait_for(stream, 10)
    assert r.status_code == 200 and loop.time() - started < 5


async def test_changing_the_password_ends_every_sign_in(stack: Stack, account: User,
                                                        clean_attempts: None) -> None:
    old = (await _token(stack.client, account.username)).json()["access_token"]
    other = (await _token(stack.client, account.username)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {old}"}
    r = await stack.client.post("/api/v1/auth/password", headers=bearer, json={
        "current_password": "sai-mat-khau", "new_password": "mat-khau-moi-dai-du"})
    assert r.status_code == 401
    r = await stack.client.post("/api/v1/auth/password", headers=bearer, json={
        "current_password": PASSWORD, "new_password": "ngan"})
    assert r.status_code == 422
    r = await stack.client.post("/api/v1/auth/password", headers=bearer, json={
        "current_password": PASSWORD, "new_password": "mat-khau-moi-dai-du"})
    assert r.status_code == 204, r.text
    for token in (old, other):
        me = await stack.client.get("/api/v1/auth/me",
                                    headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    assert (await _token(stack.client, account.username)).status_code == 401
    assert (await _token(stack.client, account.username, "mat-khau-moi-dai-du")
            ).status_code == 200


def test_ipv6_addresses_count_by_their_64_network() -> None:
    key = throttle.address_key
    assert key("2001:db8:1:2:aaaa::1") == key("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("::ffff:203.0.113.5") == key("203.0.113.5") == "203.0.113.5"
    assert key("") == "" and key("testclient") == "testclient"


async def test_hopping_within_one_ipv6_network_does_not_escape(
        stack: Stack, account: User, clean_attempts: None) -> None:
    for i in range(throttle.PAIR.free):
        async with client_from(stack, f"2001:db8:7:7::{i + 1}") as c:
            assert (await _token(c, account.username, "sai")).status_code == 401
    async with client_from(stack, "2001:db8:7:7::ff") as c:
        assert (await _token(c, account.username)).status_code == 429
    async with client_from(stack, "2001:db8:7:8::1") as c:
        assert (await _token(c, account.username)).status_code == 200
