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

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.web.conftest import LiveServer

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
