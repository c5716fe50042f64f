"""The tracking page's opt-ins in headless Chromium at a phone viewport: notifications
(Web Push) and live location, with the position reaching the operator's console live.

Headless Chromium has no push service to subscribe with (`pushManager.subscribe` needs
the browser vendor's), so the push test stubs `PushManager.subscribe/getSubscription`
with a subscription of a real P-256 key and checks the page's logic: nothing asked
before the tap, the server's key passed, the subscription registered and removed. The
sending side is tested against a push-service stand-in in tests/api/test_push.py.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, expect

from core import seed
from schema.push import b64url
from tests.web.conftest import DEMO_PASSWORD, HERE, LiveServer
from tests.web.steps import NEWEST, bearer, post_report, sign_in, watch_errors

pytestmark = pytest.mark.browser

STUB = """(() => {
  if (!self.PushManager) return;
  const keys = __KEYS__;
  let current = null;
  PushManager.prototype.subscribe = function (opts) {
    const key = new Uint8Array(opts.applicationServerKey);
    window.__subscribed = { userVisibleOnly: opts.userVisibleOnly, keyLength: key.length,
                            first: key[0] };
    const id = Math.random().toString(36).slice(2);
    current = { endpoint: "https://fcm.googleapis.com/fcm/send/pw-" + id,
                toJSON() { return { endpoint: this.endpoint, expirationTime: null, keys: keys }; },
                unsubscribe() { current = null; return Promise.resolve(true); } };
    return Promise.resolve(current);
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
})();"""


def _stub_push_manager() -> str:
    """An init script replacing the browser's push service with a fake subscription of a
    real P-256 key and auth secret."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    keys = json.dumps({"p256dh": b64url(point), "auth": b64url(os.urandom(16))})
    return STUB.replace("__KEYS__", keys)


def _report(url: str, **extra: Any) -> dict[str, Any]:
    return post_report(url, f"Có người theo dõi tôi {uuid.uuid4().hex[:6]}", **extra)


def test_notifications_opt_in_registers_a_subscription(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    accepted = _report(live_server.url)
    iid = accepted["incident_id"]
    ctx = phone(permissions=["geolocation", "notifications"])
    ctx.add_init_script(_stub_push_manager())
    page = ctx.new_page()
    errors = watch_errors(page)
    page.goto(f"/t/{accepted['tracking_token']}")
    button = page.locator("#push-btn")
    expect(button).to_be_visible()
    expect(button).to_have_text("Nhận thông báo khi có tin mới")
    assert page.evaluate("window.__subscribed === undefined")  # nothing asked by itself
    page.screenshot(path=artifacts_dir / "web-track-optins.png", full_page=True)
    button.click()
    expect(page.locator("#push-status")).to_have_text("Đã bật thông báo cho tin báo này.")
    expect(page.locator("#push-off-btn")).to_be_visible()
    assert page.evaluate("window.__subscribed") == {"userVisibleOnly": True, "keyLength": 65,
                                                    "first": 4}
    count = "select count(*) from push_subscriptions where incident_id = :i"
    assert live_server.scalar(count, i=iid) == 1
    page.locator("#push-off-btn").click()
    expect(page.locator("#push-status")).to_have_text("Đã tắt thông báo.")
    assert live_server.scalar(count, i=iid) == 0
    assert errors == []


def test_silent_sos_keeps_the_notification_offer_folded(
    phone: Callable[..., BrowserContext], live_server: LiveServer,
) -> None:
    accepted = _report(live_server.url, silent=True)
    page = phone().new_page()
    page.goto(f"/t/{accepted['tracking_token']}")
    box = page.locator("#push-box")
    assert box.evaluate("e => e.tagName") == "DETAILS"
    assert box.evaluate("e => e.open") is False
    expect(page.locator("#push-btn")).to_be_hidden()
    box.locator("summary").click()
    expect(page.locator("#push-btn")).to_be_visible()


def test_live_location_reaches_the_console(
    phone: Callable[..., BrowserContext], desktop: Callable[..., BrowserContext],
    live_server: LiveServer, artifacts_dir: Path,
) -> None:
    seed.ensure_demo_users(live_server.engine, DEMO_PASSWORD)
    accepted = _report(live_server.url)
    iid = accepted["incident_id"]
    live_server.wait_for_incident(iid)
    # The operator looks at the incident before the reporter shares.
    op = desktop().new_page()
    op_errors = watch_errors(op)
    sign_in(op, "operator1", "/console")
    op.goto(f"{NEWEST}&selected={iid}")
    expect(op.locator("#live")).to_have_attribute("data-state", "on")
    expect(op.locator("#detail #reporter-loc")).to_be_hidden()

    moved = {"latitude": HERE["latitude"] + 0.0012, "longitude": HERE["longitude"] + 0.0008,
             "accuracy": 18}
    ctx = phone(geolocation=moved)
    page = ctx.new_page()
    errors = watch_errors(page)
    page.goto(f"/t/{accepted['tracking_token']}")
    page.locator("#loc-btn").click()
    expect(page.locator("#loc-status")).to_contain_text("Đang chia sẻ vị trí")
    expect(page.locator("#loc-status")).to_contain_text("sai số 18 m")
    expect(page.locator("#loc-stop-btn")).to_be_visible()
    page.screenshot(path=artifacts_dir / "web-track-sharing.png", full_page=True)
    row = live_server.rows("select lat, lon, accuracy_m from reporter_locations "
                           "where incident_id = :i", i=iid)
    assert len(row) == 1
    assert row[0]["lat"] == pytest.approx(moved["latitude"])
    assert row[0]["accuracy_m"] == pytest.approx(18)

    # The console shows it without a reload (the live feed), as a marker of its own.
    line = op.locator("#detail #reporter-loc")
    expect(line).to_be_visible(timeout=20_000)
    expect(line).to_contain_text(re.compile(r"Vị trí người báo tin \(cập nhật \d\d:\d\d:\d\d\)"))
    expect(line).to_contain_text("sai số 18 m")
    expect(op.locator("#mini-map")).to_have_attribute("data-rl-lat", re.compile(r"^10\.77"))
    op.screenshot(path=artifacts_dir / "web-console-reporter-location.png", full_page=True)
    # And after a reload, from the server.
    op.reload()
    expect(op.locator("#detail #reporter-loc")).to_contain_text("Vị trí người báo tin")
    detail = httpx.get(f"{live_server.url}/api/v1/incidents/{iid}",
                       headers=bearer(live_server.url, "operator1")).json()
    assert detail["reporter_location"]["lon"] == pytest.approx(moved["longitude"])

    page.locator("#loc-stop-btn").click()
    expect(page.locator("#loc-status")).to_have_text("Đã dừng chia sẻ vị trí.")
    expect(page.locator("#loc-btn")).to_be_visible()
    assert errors == [] and op_errors == []
