"""The citizen app at a bad moment on a bad network, in phone-sized Chromium.

The report leaves before its photos (a 10 MB camera photo on a 750 kbit/s uplink, throttled
through CDP), survives the page being closed mid-upload, a silent SOS makes no sound or
vibration call, and a phone outside the city gets a plain message and no failed request.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.web.conftest import HERE, LiveServer, tiny_png

pytestmark = pytest.mark.browser

HANOI = {"latitude": 21.0285, "longitude": 105.8542, "accuracy": 20}


def _watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"http {r.status} {r.url}")
            if r.status >= 400 else None)
    return errors


def test_outside_the_city_says_so_and_still_reports(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone(geolocation=HANOI)
    page = ctx.new_page()
    errors = _watch_errors(page)
    page.goto("/")
    box = page.locator("#outside-city")
    expect(box).to_be_visible()
    expect(box).to_contain_text("chỉ phục vụ TP. Hồ Chí Minh")
    for number in ("113", "114", "115"):
        expect(box.locator(f'a[href="tel:{number}"]')).to_be_visible()
    expect(page.locator("#ward-name")).to_be_hidden()
    page.screenshot(path=artifacts_dir / "web-outside-city.png", full_page=True)

    description = f"Va chạm xe ở Hà Nội {uuid.uuid4().hex[:6]}"
    page.locator("label.cat-traffic_accident").click()
    page.fill("#description", description)
    page.click("#send")
    page.wait_for_url(re.compile(r"/t/[\w-]+$"))
    flagged = live_server.wait_for(
        "select outside_city from incidents where description = :d",
        lambda v: v is not None, d=description)
    assert flagged is True
    assert errors == []


def _staff_token(live_server: LiveServer, role: str) -> dict[str, str]:
    from sqlmodel import Session

    from core.seed import ensure_user

    username, password = f"web-{role}-{uuid.uuid4().hex[:6]}", "staff-password-1"
    with Session(live_server.engine) as session:
        ensure_user(session, username, password, role)
        session.commit()
    token = httpx.post(f"{live_server.url}/api/v1/auth/token",
                       data={"username": username, "password": password}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _act(live_server: LiveServer, headers: dict[str, str], incident_id: str, action: str,
         body: dict) -> dict:
    r = httpx.post(f"{live_server.url}/api/v1/incidents/{incident_id}/actions/{action}",
                   json=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _report(live_server: LiveServer, description: str) -> dict:
    body = {"category": "crime", "description": description,
            "location": {"lat": HERE["latitude"], "lon": HERE["longitude"]}}
    accepted = httpx.post(f"{live_server.url}/api/v1/reports", json=body).json()
    live_server.wait_for("select count(*) from incidents where id = :i", lambda n: n == 1,
                         i=accepted["incident_id"])
    return accepted


def _upload(live_server: LiveServer, headers: dict[str, str] | None = None) -> str:
    r = httpx.post(f"{live_server.url}/api/v1/attachments", headers=headers or {},
                   files={"file": ("a.png", tiny_png(), "image/png")})
    assert r.status_code == 201, r.text
    return r.json()["attachment_id"]


def test_tracking_page_tells_the_story(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    """Steps in plain words, the police's public note (not the internal one), what the
    citizen added shown back, only the citizen's files counted, the closing outcome and
    summary; the refresh never replaces what the person is typing."""
    sup = _staff_token(live_server, "supervisor")
    accepted = _report(live_server, f"Trộm xe trong hẻm {uuid.uuid4().hex[:6]}")
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    mine = _upload(live_server)
    added = httpx.post(f"{live_server.url}/api/v1/track/{token}/info",
                       json={"text": "Kẻ trộm mặc áo xanh, đi xe Wave.", "attachments": [mine]})
    assert added.status_code == 200, added.text
    _act(live_server, sup, iid, "verify", {})
    units = httpx.get(f"{live_server.url}/api/v1/units", headers=sup).json()
    unit = (units["items"] if isinstance(units, dict) else units)[0]
    _act(live_server, sup, iid, "route", {"unit_id": unit["id"]})
    staff_photo = _upload(live_server, sup)
    _act(live_server, sup, iid, "note", {"text": "Đã cử tổ tuần tra đến.", "public": True,
                                         "attachments": [staff_photo]})
    _act(live_server, sup, iid, "note", {"text": "Nội bộ: kiểm tra camera.", "public": False})

    page = phone().new_page()
    errors = _watch_errors(page)
    page.goto(f"/t/{token}")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Trung tâm đã xác minh báo tin")
    expect(timeline).to_contain_text(f"Đã giao cho {unit['name']} xử lý")
    expect(timeline).to_contain_text("Đã cử tổ tuần tra đến.")
    expect(timeline).not_to_contain_text("Nội bộ")
    expect(timeline.locator("li.mine")).to_contain_text("Kẻ trộm mặc áo xanh")
    expect(timeline.locator("li.mine img")).to_have_count(1)
    assert page.evaluate("document.querySelector('#timeline li.mine img').naturalWidth") == 2
    expect(page.locator("#attachment-count")).to_have_text("1")  # not the officer's photo
    assert httpx.get(f"{live_server.url}/t/{token}/files/{staff_photo}").status_code == 404

    # Typing in the add-info box survives a refresh.
    page.fill("#info-text", "Đang gõ dở")
    page.focus("#info-text")
    _act(live_server, sup, iid, "close", {"outcome": "resolved",
                                          "summary": "Đã thu hồi xe, trả cho người báo."})
    page.evaluate("htmx.trigger('#status', 'refresh')")
    expect(page.locator("#outcome")).to_contain_text("Đã giải quyết")
    expect(page.locator("#closing-summary")).to_have_text("Đã thu hồi xe, trả cho người báo.")
    expect(page.locator("#info-text")).to_have_value("Đang gõ dở")
    page.screenshot(path=artifacts_dir / "web-tracking-story.png", full_page=True)
    assert errors == []


def test_merged_report_shows_the_primary_progress_once(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    sup = _staff_token(live_server, "supervisor")
    primary = _report(live_server, f"Cướp giật ở chợ {uuid.uuid4().hex[:6]}")
    child = _report(live_server, f"Thấy cướp giật ở chợ {uuid.uuid4().hex[:6]}")
    _act(live_server, sup, primary["incident_id"], "verify", {})
    _act(live_server, sup, child["incident_id"], "merge",
         {"into_incident_id": primary["incident_id"]})
    units = httpx.get(f"{live_server.url}/api/v1/units", headers=sup).json()
    unit = (units["items"] if isinstance(units, dict) else units)[0]
    _act(live_server, sup, primary["incident_id"], "route", {"unit_id": unit["id"]})
    live_server.wait_for("select state from incidents where id = :i",
                         lambda s: s == "merged", i=child["incident_id"])

    page = phone().new_page()
    errors = _watch_errors(page)
    page.goto(f"/t/{child['tracking_token']}")
    expect(page.locator("#state-text")).to_contain_text("Vụ việc chung")
    expect(page.locator("#state-text")).to_contain_text("Đã chuyển cho đơn vị")
    expect(page.locator(".steps li.current")).to_contain_text("Đã điều lực lượng")
    expect(page.locator("#timeline li.ev-merge")).to_have_count(1)
    assert page.locator("text=gộp").count() == 1  # one line about the merge, not two
    expect(page.locator("#timeline")).to_contain_text(f"Đã giao cho {unit['name']} xử lý")
    expect(page.locator("#status[hx-get]")).to_have_count(1)  # still follows the primary
    page.screenshot(path=artifacts_dir / "web-tracking-merged.png", full_page=True)
    assert errors == []
