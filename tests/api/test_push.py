"""Web Push to reporters, end to end against a local push-service stand-in
(tests/pushservice.py): subscribe with the tracking token, drive the incident, and the
stand-in must receive pushes whose VAPID JWT verifies and whose aes128gcm body decrypts to
the Vietnamese notification. A 410 deletes the subscription; bad bodies are 422s."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from activities.push import PushSender
from core.vapid import DEMO_SUBJECT, cached_vapid
from schema.push import PUSH_WORTHY, b64url
from schema.tables import PushOutbox, PushSubscription
from tests.api.conftest import WARD_A, Stack, eventually
from tests.pushservice import PushServiceStandIn


@pytest.fixture
def standin() -> Iterator[PushServiceStandIn]:
    service = PushServiceStandIn().start()
    yield service
    service.stop()


@pytest.fixture
async def push_stack(make_stack: Callable[..., Awaitable[Stack]],
                     standin: PushServiceStandIn) -> Stack:
    return await make_stack(CANHBAO_PUSH_TEST_ORIGINS=standin.origin)


def sender(stack: Stack) -> PushSender:
    keys, why = cached_vapid(stack.settings)
    assert keys is not None, why
    return PushSender(stack.settings, stack.infra.db, keys)


async def subscribe(stack: Stack, standin: PushServiceStandIn, token: str,
                    expect: int = 201) -> Any:
    key = (await stack.client.get("/api/v1/push/key")).json()["public_key"]
    sub = standin.subscribe(key)
    r = await stack.client.post("/api/v1/push/subscriptions",
                                json={"tracking_token": token, **sub.to_json()})
    assert r.status_code == expect, r.text
    return sub


async def subscribed(stack: Stack, standin: PushServiceStandIn,
                     **report: Any) -> tuple[dict[str, Any], Any]:
    """A new report (`report`: submit's overrides) and one push subscription to it: (the
    accepted answer, the stand-in's subscription)."""
    accepted = await stack.submit(**report)
    return accepted, await subscribe(stack, standin, accepted["tracking_token"])


async def verified(stack: Stack, iid: str) -> None:
    """Once the read model has the incident, the operator verifies it: one push-worthy
    status change queued."""
    await stack.wait_projected(iid)
    assert (await stack.act(iid, "verify", "operator")).status_code == 200


async def drain_until(push: PushSender, done: Callable[[], bool | Awaitable[bool]]) -> None:
    """Drain the push outbox once, then again, until `done()` (a plain or async check)
    holds; fail after 20 s."""
    async def drained() -> bool:
        await push.drain_once()
        result = done()
        return await result if inspect.isawaitable(result) else result

    await eventually(drained, timeout=20)


async def endpoints_once_drained(stack: Stack, iid: str) -> list[str]:
    """Drain until nothing is queued for incident `iid`; the endpoints it still has then."""
    async def settled() -> bool:
        return await count(stack, PushOutbox, incident_id=iid) == 0

    await drain_until(sender(stack), settled)
    async with stack.infra.db.session() as s:
        return list((await s.execute(select(col(PushSubscription.endpoint)).where(
            col(PushSubscription.incident_id) == iid))).scalars().all())


async def count(stack: Stack, table: Any, **where: str) -> int:
    async with stack.infra.db.session() as s:
        stmt = select(func.count()).select_from(table)
        for name, value in where.items():
            stmt = stmt.where(col(getattr(table, name)) == value)
        return int((await s.execute(stmt)).scalar_one())


async def test_key_is_the_demo_vapid_key(push_stack: Stack) -> None:
    r = await push_stack.client.get("/api/v1/push/key")
    assert r.status_code == 200
    key = r.json()["public_key"]
    assert "=" not in key and len(key) == 87  # 65 bytes, base64url without padding
    assert (push_stack.settings.var_dir / "vapid_private.pem").exists()
    token = (await push_stack.submit())["tracking_token"]
    page = (await push_stack.client.get(f"/t/{token}")).text
    assert 'id="push-box"' in page and "Nhận thông báo khi có tin mới" in page


async def test_status_changes_reach_the_push_service(push_stack: Stack,
                                                     standin: PushServiceStandIn) -> None:
    stack = push_stack
    accepted, sub = await subscribed(stack, standin)
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    await stack.wait_projected(iid)
    for action, body in (("verify", {}),
                         ("classify", {"category": "crime", "priority": 2}),
                         ("route", {"ward_code": stack.people.places[WARD_A].code})):
        r = await stack.act(iid, action, "operator", body)
        assert r.status_code == 200, r.text
    r = await stack.act(iid, "note", "officer_a", {"text": "Đã cử tổ tuần tra đến", "public": True})
    assert r.status_code == 200, r.text
    push = sender(stack)
    await drain_until(push, lambda: len(standin.for_subscription(sub.id)) >= 3)
    assert standin.refused == []
    got = standin.for_subscription(sub.id)
    assert [g.payload["title"] for g in got] == [
        PUSH_WORTHY["verify"].title, PUSH_WORTHY["route"].title, PUSH_WORTHY["note"].title]
    first = got[0]
    code = accepted["tracking_code"]
    assert first.payload["body"] == f"Trung tâm đã xác minh tin báo {code} của bạn."
    assert first.payload["url"] == f"/t/{token}"
    assert first.payload["silent"] is False
    assert got[2].payload["body"] == "Đã cử tổ tuần tra đến" and got[2].urgency == "high"
    assert first.claims["sub"] == DEMO_SUBJECT and first.claims["aud"] == standin.origin
    assert first.ttl == stack.settings.push_ttl_s and first.urgency == "normal"
    assert "Cán bộ" not in str([g.payload for g in got])  # no staff names
    # Sent once: the queue is empty and another pass sends nothing.
    assert await count(stack, PushOutbox, incident_id=iid) == 0
    assert await push.drain_once() == 0
    assert len(standin.for_subscription(sub.id)) == 3


async def test_gone_subscription_is_deleted(push_stack: Stack,
                                            standin: PushServiceStandIn) -> None:
    stack = push_stack
    accepted, gone = await subscribed(stack, standin)
    iid = accepted["incident_id"]
    kept = await subscribe(stack, standin, accepted["tracking_token"])
    standin.answer[gone.id] = 410
    await verified(stack, iid)

    assert await endpoints_once_drained(stack, iid) == [kept.endpoint]
    assert len(standin.for_subscription(kept.id)) == 1


async def test_silent_sos_pushes_are_silent(push_stack: Stack,
                                            standin: PushServiceStandIn) -> None:
    stack = push_stack
    accepted, sub = await subscribed(stack, standin, silent=True)
    iid = accepted["incident_id"]
    await verified(stack, iid)
    await drain_until(sender(stack), lambda: len(standin.for_subscription(sub.id)) == 1)
    assert standin.for_subscription(sub.id)[0].payload["silent"] is True


async def test_failing_service_is_retried_later(push_stack: Stack,
                                                standin: PushServiceStandIn) -> None:
    stack = push_stack
    accepted, sub = await subscribed(stack, standin)
    iid = accepted["incident_id"]
    standin.answer[sub.id] = 503
    await verified(stack, iid)

    async def attempted() -> bool:
        async with stack.infra.db.session() as s:
            row = (await s.execute(select(PushOutbox).where(
                col(PushOutbox.incident_id) == iid))).scalar_one_or_none()
        return row is not None and row.attempts == 1 and row.last_error is not None

    await drain_until(sender(stack), attempted)
    async with stack.infra.db.session() as s:
        row = (await s.execute(select(PushOutbox).where(
            col(PushOutbox.incident_id) == iid))).scalar_one()
    assert row.next_attempt_at is not None and "503" in (row.last_error or "")
    # The incident is not held up by the push service.
    assert (await stack.detail(iid)).json()["state"] == "verified"


async def test_subscription_rules(push_stack: Stack, standin: PushServiceStandIn) -> None:
    stack = push_stack
    accepted = await stack.submit()
    token = accepted["tracking_token"]
    key = (await stack.client.get("/api/v1/push/key")).json()["public_key"]
    good = standin.subscribe(key).to_json()

    async def post(body: dict[str, Any], lang: str = "vi") -> Any:
        return await stack.client.post("/api/v1/push/subscriptions", json=body,
                                       headers={"Accept-Language": lang})

    bad_point = b64url(b"\x04" + b"\x01" * 64)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "endpoint": "http://push.example.com/x"}, "https"),
        ({**good, "endpoint": "https://10.0.0.5/x"}, "push service"),
        ({**good, "endpoint": "https://localhost/x"}, "push service"),
        # Names and ports that reach the server itself or any host (found by a tester).
        ({**good, "endpoint": "https://127.1:8000/ssrf"}, "push service"),
        ({**good, "endpoint": "https://127.0.0.1.nip.io/x"}, "push service"),
        ({**good, "endpoint": "https://localtest.me:8000/x"}, "push service"),
        ({**good, "endpoint": "https://fcm.googleapis.com:22/x"}, "push service"),
        ({**good, "endpoint": "https://evil.example.com/collect"}, "push service"),
        ({**good, "endpoint": "https://push.services.mozilla.com.evil.example/x"},
         "push service"),
        ({**good, "endpoint": "not a url"}, "endpoint"),
        # Hosts that urllib.parse reads one way and urllib3 (pywebpush) another (#20).
        ({**good, "endpoint": "https://127.0.0.1\\.push.apple.com/ssrf-proof"}, "valid URL"),
        ({**good, "endpoint": "https://evil.example\\.push.apple.com/x"}, "valid URL"),
        ({**good, "endpoint": "https://evil.example%5c.push.apple.com/x"}, "valid URL"),
        ({**good, "endpoint": "https://evil.example%2f.push.apple.com/x"}, "valid URL"),
        ({**good, "endpoint": "https://evil.example;.push.apple.com/x"}, "valid URL"),
        ({**good, "endpoint": "https://bücher.push.apple.com/x"}, "valid URL"),
        ({**good, "endpoint": good["endpoint"].replace("/push/", "\\push/")}, "valid URL"),
        ({**good, "keys": {**good["keys"], "p256dh": good["keys"]["p256dh"][:40]}}, "65 bytes"),
        ({**good, "keys": {**good["keys"], "p256dh": bad_point}}, "P-256"),
        ({**good, "keys": {**good["keys"], "auth": b64url(b"x" * 15)}}, "16 bytes"),
        ({**good, "keys": {**good["keys"], "auth": "***"}}, "base64url"),
        ({"endpoint": good["endpoint"]}, "keys"),
    ]
    for body, words in cases:
        r = await post({"tracking_token": token, **body}, "en")
        assert r.status_code == 422, (body, r.text)
        assert words in r.text, (words, r.text)
        vi = await post({"tracking_token": token, **body})
        assert vi.json()["detail"] == "Dữ liệu không hợp lệ"
    r = await post({"tracking_token": "no-such-token", **good})
    assert r.status_code == 404
    # Upper case is read as lower case, and kept as the worker will send to it.
    other = (await stack.submit())["tracking_token"]
    upper = await post({"tracking_token": other, **good,
                        "endpoint": "HTTPS://WEB.Push.Apple.COM:443/AbC"})
    assert upper.status_code == 201 and upper.json()["endpoint"] == "https://web.push.apple.com/AbC"
    # Five per report; the same endpoint again only refreshes its keys.
    first = await post({"tracking_token": token, **good})
    assert first.status_code == 201 and first.json()["subscriptions"] == 1
    again = await post({"tracking_token": token, **good})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    for _ in range(4):
        assert (await post({"tracking_token": token,
                            **standin.subscribe(key).to_json()})).status_code == 201
    over = await post({"tracking_token": token, **standin.subscribe(key).to_json()})
    assert over.status_code == 409 and over.json()["error"] == "too_many_subscriptions"
    # Unsubscribing frees a place; unsubscribing twice is fine.
    for _ in range(2):
        r = await stack.client.request("DELETE", "/api/v1/push/subscriptions",
                                       json={"tracking_token": token,
                                             "endpoint": good["endpoint"]})
        assert r.status_code == 204
    assert await count(stack, PushSubscription, incident_id=accepted["incident_id"]) == 4


async def test_closed_report_takes_no_subscription(push_stack: Stack,
                                                   standin: PushServiceStandIn) -> None:
    stack = push_stack
    accepted = await stack.submit()
    await stack.wait_projected(accepted["incident_id"])
    r = await stack.client.post(f"/api/v1/track/{accepted['tracking_token']}/cancel", json={})
    assert r.status_code == 200, r.text
    await subscribe(stack, standin, accepted["tracking_token"], expect=409)


async def test_push_off_without_a_key_outside_demo(
        make_stack: Callable[..., Awaitable[Stack]], standin: PushServiceStandIn) -> None:
    stack = await make_stack(CANHBAO_DEMO=False)
    # The tracking page offers no notifications then (live location still).
    page = (await stack.client.get(f"/t/{(await stack.submit())['tracking_token']}")).text
    assert 'id="loc-box"' in page and 'id="push-box"' not in page
    r = await stack.client.get("/api/v1/push/key", headers={"Accept-Language": "en"})
    assert r.status_code == 404 and r.json()["error"] == "push_disabled"
    assert "not enabled" in r.json()["detail"]
    sub = standin.subscribe(b64url(b"\x04" + b"\x00" * 64)).to_json()
    r = await stack.client.post("/api/v1/push/subscriptions",
                                json={"tracking_token": "whatever", **sub})
    assert r.status_code == 404 and r.json()["error"] == "push_disabled"


async def test_the_worker_loop_sends(push_stack: Stack, standin: PushServiceStandIn) -> None:
    """What worker.py runs: build_push_sender + push_forever, until cancelled."""
    import asyncio

    from activities.push import build_push_sender, push_forever

    stack = push_stack
    accepted, sub = await subscribed(stack, standin)
    iid = accepted["incident_id"]
    await verified(stack, iid)
    built = build_push_sender(stack.settings.model_copy(update={"push_interval_s": 0.1}),
                              stack.infra.db)
    assert built is not None
    loop = asyncio.create_task(push_forever(built))
    try:
        async def sent() -> bool:
            return len(standin.for_subscription(sub.id)) == 1

        await eventually(sent, timeout=20)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


async def test_an_expired_subscription_is_refused_and_one_that_expires_is_dropped(
        push_stack: Stack, standin: PushServiceStandIn) -> None:
    """The browser's `expirationTime` (ms since the epoch): a subscription already past
    it is a 422 in both languages; one that passes it later gets nothing more, and the
    worker deletes it with what was queued for it."""
    import time
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    stack = push_stack
    accepted = await stack.submit()
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    key = (await stack.client.get("/api/v1/push/key")).json()["public_key"]
    now_ms = time.time() * 1000

    async def post(body: dict[str, Any], lang: str = "vi") -> Any:
        return await stack.client.post("/api/v1/push/subscriptions",
                                       json={"tracking_token": token, **body},
                                       headers={"Accept-Language": lang})

    past = {**standin.subscribe(key).to_json(), "expirationTime": now_ms - 60_000}
    r = await post(past)
    assert r.status_code == 422, r.text
    assert r.json()["fields"] == [{"field": "expirationTime", "message":
                                   "Đăng ký nhận thông báo của trình duyệt đã hết hạn; "
                                   "hãy bật lại thông báo"}]
    en = await post(past, "en")
    assert en.status_code == 422
    assert "already expired" in en.json()["fields"][0]["message"]
    for absurd in (-1, 1e300, "soon"):
        r = await post({**past, "expirationTime": absurd})
        assert r.status_code == 422, (absurd, r.text)
        assert r.json()["fields"][0]["field"] == "expirationTime"
    assert await count(stack, PushSubscription, incident_id=iid) == 0

    # Accepted while still valid (its expiry kept), then it passes: nothing is sent to it.
    soon = standin.subscribe(key)
    r = await post({**soon.to_json(), "expirationTime": now_ms + 3_600_000})
    assert r.status_code == 201, r.text
    kept = await subscribe(stack, standin, token)  # no expirationTime: never expires
    async with stack.infra.db.session() as s:
        row = (await s.execute(select(PushSubscription).where(
            col(PushSubscription.endpoint) == soon.endpoint))).scalar_one()
        assert abs(row.expires_at - datetime.fromtimestamp(now_ms / 1000 + 3600, UTC)
                   ) < timedelta(seconds=1)
        await s.execute(update(PushSubscription).where(
            col(PushSubscription.id) == row.id).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await s.commit()
    await stack.wait_projected(iid)
    assert (await stack.act(iid, "verify", "operator")).status_code == 200
    push = sender(stack)

    async def settled() -> bool:
        await push.drain_once()
        return await count(stack, PushOutbox, incident_id=iid) == 0

    await eventually(settled, timeout=20)
    assert standin.for_subscription(soon.id) == []
    assert len(standin.for_subscription(kept.id)) == 1
    async with stack.infra.db.session() as s:
        left = (await s.execute(select(col(PushSubscription.endpoint)).where(
            col(PushSubscription.incident_id) == iid))).scalars().all()
    assert left == [kept.endpoint]


async def test_the_worker_checks_again_before_sending(push_stack: Stack,
                                                      standin: PushServiceStandIn) -> None:
    """A stored endpoint the check refuses today (kept under older rules: issue #20's
    backslash, which urllib3 would send to the stand-in's own host and port) is deleted
    with its queue; the worker opens no connection to it."""
    stack = push_stack
    accepted, kept = await subscribed(stack, standin)
    iid = accepted["incident_id"]
    bad = await subscribe(stack, standin, accepted["tracking_token"])
    aimed = f"{standin.origin}\\.push.apple.com/push/{bad.id}"
    async with stack.infra.db.session() as s:
        await s.execute(update(PushSubscription).where(
            col(PushSubscription.endpoint) == bad.endpoint).values(endpoint=aimed))
        await s.commit()
    await verified(stack, iid)

    assert await endpoints_once_drained(stack, iid) == [kept.endpoint]
    assert standin.requests == [f"/push/{kept.id}"]  # nothing reached the aimed path
