"""The console as a dispatch queue (issue #16, items 2 and 3), in Chromium against the live
app: the most urgent report first, rows that stay put while reports stream in (a click
lands on the row aimed at; new ones wait behind "N báo tin mới"), and the keyboard path
from a new report to routed without the mouse, focus never left on <body>.

Screenshots: test-artifacts/console-queue-urgency.png, console-queue-waiting.png,
console-queue-keys-help.png, console-queue-dispatch-form.png,
console-queue-dispatched.png."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import text

from core import seed
from tests.web.conftest import DEMO_PASSWORD, LiveServer
from tests.web.steps import bearer, post_report, sign_in, watch_errors

ROWS = "#rows > li.inc"


@pytest.fixture(autouse=True)
def demo_users(live_server: LiveServer) -> None:
    seed.ensure_demo_users(live_server.engine, DEMO_PASSWORD)


FOCUSED = "() => { const a = document.activeElement; return a ? a.tagName + '#' + a.id : ''; }"


def _ids(page: Page) -> list[str]:
    return page.locator(ROWS).evaluate_all("els => els.map(e => e.dataset.id)")


def _top(page: Page, iid: str) -> float:
    """Where the row stands in the list's scrolled content (scrolling aside)."""
    return page.locator(f"{ROWS}[data-id='{iid}']").evaluate(
        "li => { const col = li.closest('.col-list'); "
        "return li.getBoundingClientRect().top - col.getBoundingClientRect().top "
        "+ col.scrollTop; }")


def _settle_deadlines(live_server: LiveServer, ids: list[str], late: str | None = None
                      ) -> None:
    """Deadlines an hour ahead (no SLA passes during the test), `late` five minutes past."""
    live_server.wait_for("select count(*) from incidents where id = any(:ids)",
                         lambda n: n == len(ids), ids=ids)
    with live_server.engine.begin() as conn:
        conn.execute(text("update incidents set deadline = now() + interval '1 hour' "
                          "where id = any(:ids)"), {"ids": ids})
        if late:
            conn.execute(text("update incidents set deadline = now() - interval '5 minutes' "
                              "where id = :i"), {"i": late})


def test_most_urgent_first_and_the_order_is_remembered(
    desktop: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    marker = uuid.uuid4().hex[:8]
    tree = post_report(live_server.url, f"Cây đổ chắn đường {marker}", "other")
    late = post_report(live_server.url, f"Cống bị vỡ, nước tràn {marker}", "other")
    theft = post_report(live_server.url, f"Giật điện thoại {marker}", "crime")
    fire = post_report(live_server.url, f"Cháy nhà, có người mắc kẹt {marker}",
                       "fire_explosion")
    ids = [r["incident_id"] for r in (tree, late, theft, fire)]
    _settle_deadlines(live_server, ids, late=late["incident_id"])

    page = sign_in(desktop().new_page(), "operator1", "/console")
    errors = watch_errors(page)
    page.goto(f"/console?q={marker}")
    expect(page.locator("#f-sort")).to_have_value("urgency")
    expect(page.locator(ROWS)).to_have_count(4)
    # Overdue first, then priority (the P1 fire above the P2 theft), then the oldest.
    assert _ids(page) == [late["incident_id"], fire["incident_id"], theft["incident_id"],
                          tree["incident_id"]]
    expect(page.locator(ROWS).first).to_have_class(re.compile(r"\boverdue\b"))
    expect(page.locator(f"{ROWS} .prio").nth(1)).to_have_text("P1")
    counts = page.locator("#state-counts")
    expect(counts.locator("[data-state=received] b")).to_have_text("4")
    expect(counts.locator("#count-late b")).to_have_text("1")
    expect(page.locator("#keys-hint")).to_contain_text("j/k")
    page.screenshot(path=artifacts_dir / "console-queue-urgency.png")

    # Newest first, kept for this operator: a new page load renders the same order.
    page.select_option("#f-sort", "newest")
    expect(page.locator(ROWS).first).to_have_attribute("data-id", fire["incident_id"])
    assert _ids(page) == ids[::-1]
    page.goto(f"/console?q={marker}")
    expect(page.locator("#f-sort")).to_have_value("newest")
    assert _ids(page) == ids[::-1]
    page.select_option("#f-sort", "oldest")
    expect(page.locator(ROWS).first).to_have_attribute("data-id", tree["incident_id"])
    assert _ids(page) == ids
    page.select_option("#f-sort", "urgency")
    expect(page.locator(ROWS).first).to_have_attribute("data-id", late["incident_id"])

    # Pages of two rows: "Xem thêm" goes on in the same order.
    page.goto(f"/console?q={marker}&rows=2")
    expect(page.locator(ROWS)).to_have_count(2)
    page.locator("#rows .btn-more").click()
    expect(page.locator(ROWS)).to_have_count(4)
    expect(page.locator("#rows .btn-more")).to_have_count(0)
    assert _ids(page) == [late["incident_id"], fire["incident_id"], theft["incident_id"],
                          tree["incident_id"]]
    assert errors == [], errors


def test_a_click_lands_on_its_row_while_reports_stream_in(
    desktop: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    marker = uuid.uuid4().hex[:8]
    first = [post_report(live_server.url, f"Va chạm xe máy số {n} {marker}",
                         "traffic_accident")["incident_id"] for n in range(6)]
    _settle_deadlines(live_server, first)

    page = sign_in(desktop().new_page(), "operator1", "/console")
    errors = watch_errors(page)
    page.goto(f"/console?q={marker}")
    expect(page.locator(ROWS)).to_have_count(6)
    expect(page.locator("#live")).to_have_attribute("data-state", "on")
    target = page.locator(f"{ROWS}[data-id='{first[3]}']")
    target.locator("a").click()
    expect(page.locator("#detail")).to_have_attribute("data-incident", first[3])
    before = _top(page, first[3])

    # Reports stream in (a P1 fire among them, which sorts to the top) while the operator
    # clicks one row after another.
    streamed: list[str] = []

    def stream() -> None:
        for n in range(8):
            category = "fire_explosion" if n == 2 else "crime"
            streamed.append(post_report(live_server.url, f"Báo tin dồn dập {n} {marker}",
                                        category)["incident_id"])

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        for round_ in range(4):
            for iid in (first[round_], first[5 - round_]):
                page.locator(f"{ROWS}[data-id='{iid}'] a").click()
                expect(page.locator("#detail")).to_have_attribute("data-incident", iid)
    finally:
        sender.join(timeout=60)
    assert len(streamed) == 8
    live_server.wait_for("select count(*) from incidents where id = any(:ids)",
                         lambda n: n == 8, ids=streamed)

    # The new ones wait behind the bar; nothing shown moved.
    bar = page.locator("#new-bar")
    expect(bar).to_have_text(re.compile(r"^8 báo tin mới"), timeout=20_000)
    expect(page.locator(ROWS)).to_have_count(6)
    assert _top(page, first[3]) == before
    # A new P1 gave the sound cue.
    expect(page.locator("body")).to_have_attribute("data-last-cue", "p1")
    page.screenshot(path=artifacts_dir / "console-queue-waiting.png")

    # N shows them, most urgent first: the fire on top.
    page.keyboard.press("n")
    expect(page.locator(ROWS)).to_have_count(14)
    expect(bar).to_be_hidden()
    assert _ids(page)[0] == streamed[2]
    assert errors == [], errors


def test_keyboard_path_from_a_new_report_to_routed(
    desktop: Callable[..., BrowserContext], live_server: LiveServer, staff: dict[str, Any],
    artifacts_dir: Path,
) -> None:
    marker = uuid.uuid4().hex[:8]
    page = sign_in(desktop().new_page(), "operator1", "/console")
    errors = watch_errors(page)
    page.goto(f"/console?q={marker}")
    expect(page.locator("#live")).to_have_attribute("data-state", "on")
    expect(page.locator(ROWS)).to_have_count(0)

    page.keyboard.press("?")
    expect(page.locator("#keys-help")).to_be_visible()
    expect(page.locator("#keys-help")).to_contain_text("Gộp vào vụ trùng đầu tiên")
    page.screenshot(path=artifacts_dir / "console-queue-keys-help.png")
    page.keyboard.press("Escape")
    expect(page.locator("#keys-help")).to_be_hidden()

    report = post_report(live_server.url, f"Trộm xe máy trước chợ {marker}", "crime")
    iid = report["incident_id"]
    expect(page.locator("#new-bar")).to_have_text(re.compile(r"^1 báo tin mới"),
                                                  timeout=20_000)
    page.keyboard.press("n")
    expect(page.locator(ROWS)).to_have_count(1)
    page.keyboard.press("j")
    assert page.evaluate("() => document.activeElement.closest('li').dataset.id") == iid
    page.keyboard.press("Enter")
    detail = page.locator("#detail")
    expect(detail).to_have_attribute("data-incident", iid)
    expect(detail.locator("#btn-verify")).to_be_visible()

    page.keyboard.press("v")
    expect(detail.locator(".d-head .state")).to_have_text("Đã xác minh")
    # The next control: the priority of the dispatch form.
    expect(page.locator("#dispatch-form input[name=priority]:focus")).to_have_count(1)
    page.keyboard.press("1")
    expect(page.locator("#dispatch-form input[name=priority][value='1']")).to_be_checked()
    page.locator("#dispatch-form").evaluate("f => f.scrollIntoView({block: 'center'})")
    page.screenshot(path=artifacts_dir / "console-queue-dispatch-form.png")
    proposed = detail.locator("#route-unit option:checked").inner_text().rstrip(" ★")
    page.keyboard.press("r")
    expect(detail.locator(".d-head .state")).to_have_text("Đã chuyển xử lý")
    expect(detail.locator(".d-head .prio")).to_have_text("P1")
    expect(detail.locator("#d-unit")).to_contain_text(proposed)
    expect(page.locator("#toasts")).to_contain_text("Đã điều phối.")
    focused = page.evaluate(FOCUSED)
    assert focused and not focused.startswith("BODY"), focused
    expect(page.locator(f"{ROWS}[data-id='{iid}'] .state")).to_have_text("Đã chuyển xử lý")
    page.locator(".col-detail").evaluate("e => { e.scrollTop = 0; }")
    page.screenshot(path=artifacts_dir / "console-queue-dispatched.png")

    # Each step is its own event, by the operator.
    case = httpx.get(f"{live_server.url}/api/v1/incidents/{iid}", timeout=20,
                     headers=bearer(live_server.url, "operator1")).json()
    steps = [(e["action"], e["actor"]["username"]) for e in case["timeline"]
             if e["action"] in ("verify", "classify", "route")]
    assert steps == [("verify", "operator1"), ("classify", "operator1"),
                     ("route", "operator1")], steps
    assert case["priority"] == 1
    assert errors == [], errors


def test_focus_stays_off_body_after_actions_and_refreshes(
    desktop: Callable[..., BrowserContext], live_server: LiveServer,
) -> None:
    marker = uuid.uuid4().hex[:8]
    spam = post_report(live_server.url, f"Tin thử nghiệm {marker}", "other")["incident_id"]
    keep = post_report(live_server.url, f"Đánh nhau trước quán {marker}", "crime")["incident_id"]
    _settle_deadlines(live_server, [spam, keep])
    page = sign_in(desktop().new_page(), "operator1", "/console")
    errors = watch_errors(page)
    page.goto(f"/console?q={marker}&selected={keep}")
    expect(page.locator("#detail")).to_have_attribute("data-incident", keep)
    expect(page.locator("#live")).to_have_attribute("data-state", "on")

    # A live change to the open incident replaces the panel: focus comes back to the
    # control it was on.
    page.locator("#btn-dispatch").focus()
    httpx.post(f"{live_server.url}/api/v1/incidents/{keep}/actions/note", timeout=20,
               headers=bearer(live_server.url, "operator1"), json={"text": "Ghi chú"})
    expect(page.locator("#d-timeline")).to_contain_text("Ghi chú", timeout=20_000)
    expect(page.locator("#btn-dispatch")).to_be_focused()

    # Reject with x: the reason, Enter; then focus moves on along the queue.
    page.locator(f"{ROWS}[data-id='{spam}'] a").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_have_attribute("data-incident", spam)
    page.keyboard.press("x")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.type("Tin báo thử")
    page.keyboard.press("Enter")
    expect(page.locator("#detail .d-head .state")).to_have_text("Từ chối")
    expect(page.locator(f"{ROWS}[data-id='{spam}']")).to_have_class(re.compile(r"\bgone\b"))
    focused = page.evaluate(FOCUSED)
    assert focused and not focused.startswith("BODY"), focused
    # Esc closes the incident; focus goes to its row, not the page.
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_have_attribute("data-incident", "")
    focused = page.evaluate(FOCUSED)
    assert focused.startswith("A"), focused
    assert errors == [], errors
