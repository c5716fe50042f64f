"""A flood of reports from one address in the operator's console (issue #9, item 8), in
headless Chromium at 1280×800: the 25 reports are one row, rejecting it is one action and
leaves the queue empty; the map legend keeps each category on one line at that width.

Screenshots: test-artifacts/console-flood-group.png, console-flood-rejected.png."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from core import seed
from tests.conftest import FLOOD_DEFAULTS
from tests.web.conftest import DEMO_PASSWORD, LiveServer
from tests.web.steps import sign_in

pytestmark = pytest.mark.browser

SCREEN = {"viewport": {"width": 1280, "height": 800}, "locale": "en-GB",
          "timezone_id": "Asia/Ho_Chi_Minh"}
FLOOD = 25


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    """The production flood figures, and the test client's X-Forwarded-For believed (it
    stands for a reverse proxy), so the flood comes from an address of this test's own."""
    return {**FLOOD_DEFAULTS, "CANHBAO_FORWARDED_ALLOW_IPS": "127.0.0.1"}


@pytest.fixture
def operator(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    seed.ensure_demo_users(live_server.engine, DEMO_PASSWORD)
    ctx = browser.new_context(**SCREEN, base_url=live_server.url)
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


def test_flood_is_one_row_rejected_in_one_action(live_server: LiveServer,
                                                 operator: BrowserContext,
                                                 artifacts_dir: Path) -> None:
    # A ward no other test has used, so that its queue holds only this flood.
    ward = live_server.rows(
        "select code, lat, lon from wards where lat is not null and code not in "
        "(select ward_code from incidents where ward_code is not null) order by code limit 1")[0]
    address = f"203.0.113.{random.randint(1, 254)}"
    ids = []
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        for i in range(FLOOD):
            r = client.post("/api/v1/reports", headers={"X-Forwarded-For": address}, json={
                "category": "other", "description": f"Tin rác số {i}",
                "location": {"lat": ward["lat"] + random.uniform(-1e-3, 1e-3),
                             "lon": ward["lon"] + random.uniform(-1e-3, 1e-3)}})
            assert r.status_code == 202, r.text
            ids.append(r.json()["incident_id"])
    live_server.wait_for("select count(*) from incidents where id = any(:ids) and ward_code = "
                         ":w", lambda n: n == FLOOD, ids=ids, w=ward["code"])

    page = operator.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, "operator1", "/console")
    page.goto(f"/console?ward={ward['code']}&lang=en")

    group = page.locator("#incident-list li.grp")
    expect(group).to_have_count(1)
    expect(page.locator("#incident-list li.inc")).to_have_count(0)
    expect(group).to_have_attribute("data-size", str(FLOOD))
    expect(group.locator(".grp-title")).to_have_text(
        f"{FLOOD} reports from one source within 1 min — suspected spam")
    group.locator("summary").click()
    expect(group.locator(".grp-members li")).to_have_count(FLOOD)
    expect(group.locator(".grp-map circle")).to_have_count(FLOOD)
    # A report past the address limit says so, with the figures, and keeps its deadline.
    group.locator(".grp-members li").last.locator("a").click()
    expect(page.locator("#d-spam")).to_contain_text(
        f"{FLOOD} reports within 10 min from the same network address (limit 10)")
    expect(page.locator("#d-countdown")).not_to_be_empty()

    # The legend at 1280 px: every category on one line ("Crime" used to wrap).
    heights = page.locator(".legend li").evaluate_all(
        "els => els.map(e => [e.textContent.trim(), e.getBoundingClientRect().height, "
        "parseFloat(getComputedStyle(e).lineHeight) || 20])")
    assert len(heights) == 4
    for name, height, line in heights:
        assert height < 1.5 * line, (name, height, line)
    page.screenshot(path=artifacts_dir / "console-flood-group.png")

    group.locator(".btn-group-reject").click()
    # 25 workflow updates on a shared 2-core machine: give them time (no timing asserted).
    expect(page.locator("#toasts .toast")).to_contain_text(f"{FLOOD} reports rejected.",
                                                           timeout=120_000)
    expect(page.locator("#incident-list li.grp")).to_have_count(0)
    expect(page.locator("#incident-list li.inc")).to_have_count(0)
    expect(page.locator("#incident-list .empty")).to_be_visible()
    live_server.wait_for("select count(*) from incidents where id = any(:ids) and "
                         "state = 'rejected'", lambda n: n == FLOOD, ids=ids)
    page.screenshot(path=artifacts_dir / "console-flood-rejected.png")
    assert not errors, errors
