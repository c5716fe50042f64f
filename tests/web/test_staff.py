"""The staff console in headless Chromium against a live server: login, the operator's
live console, the officer's phone page, the supervisor's alerts and statistics.

Screenshots go to test-artifacts/staff-*.png for people to look at.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from sqlalchemy import text

from tests.web.conftest import DEMO_PASSWORD, PHONE, LiveServer
from tests.web.steps import (
    NEWEST,
    act,
    bearer,
    png_file,
    post_report,
    sign_in,
    upload_png,
    watch_errors,
)
from web.charts import bars, hour_columns
from web.templating import fmt_duration

pytestmark = pytest.mark.browser


def _report(url: str, description: str, category: str = "crime",
            photo: bool = False) -> dict[str, Any]:
    attachments = [upload_png(url, "hien-truong.png")] if photo else []
    return post_report(url, description, category, address="Cửa Nam chợ Bến Thành",
                       reporter={"name": "Trần Thị B"}, attachments=attachments)


def test_chart_geometry_and_durations() -> None:
    class G:
        def __init__(self, key: str, count: int) -> None:
            self.key, self.count, self.label = key, count, key

    chart = bars([G("a", 2), G("b", 8), G("c", 4)], lambda g: g.label, top=2)
    assert [r["label"] for r in chart["rows"]] == ["b", "c"]
    assert chart["rows"][0]["w"] == 2 * chart["rows"][1]["w"]
    cols = hour_columns([G("7", 3)])["cols"]
    assert len(cols) == 24 and cols[7]["count"] == 3 and cols[8]["h"] == 0
    assert (fmt_duration(65), fmt_duration(3725), fmt_duration(None)) == ("1:05", "1:02:05", "—")


def test_login_errors_throttling_and_role_homes(
    live_server: LiveServer, staff: dict[str, Any]
) -> None:
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as client:
        page = client.get("/login")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        # Without the login CSRF token: refused.
        r = client.post("/login", data={"username": "operator1", "password": DEMO_PASSWORD})
        assert r.status_code == 403 and "hết hạn" in r.text
        r = client.post("/login", data={"username": "operator1", "password": "sai",
                                        "csrf_token": csrf})
        assert r.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in r.text
        who = f"ai-do-{uuid.uuid4().hex[:6]}"
        codes = [client.post("/login", data={"username": who, "password": "x",
                                             "csrf_token": csrf}).status_code
                 for _ in range(4)]
        assert codes[:3] == [401] * 3 and codes[3] == 429
        r = client.post("/login", data={"username": who, "password": "x", "csrf_token": csrf})
        assert "Đăng nhập sai nhiều lần" in r.text and int(r.headers["retry-after"]) >= 1
        # Pages need a session; an officer is sent to the own page.
        assert client.get("/console?selected=x&state=all").headers["location"] == (
            "/login?next=/console%3Fselected%3Dx%26state%3Dall")
        r = client.post("/login", data={"username": staff["officer"], "password": DEMO_PASSWORD,
                                        "csrf_token": csrf, "next": "/console"})
        assert r.status_code == 303 and r.headers["location"] == "/officer"
        assert client.get("/console").headers["location"] == "/officer"
        assert client.get("/supervisor").headers["location"] == "/officer"
        assert client.get("/officer").status_code == 200
        client.get("/logout")
        client.cookies.clear()
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post("/login", data={"username": "operator1", "password": DEMO_PASSWORD,
                                        "csrf_token": csrf})
        assert r.headers["location"] == "/console"
        assert client.get("/officer").headers["location"] == "/console"
        english = client.get("/console?lang=en")
        assert "Sign out" in english.text and "Overdue" in english.text
        assert english.cookies.get("lang") == "en"
        client.cookies.set("lang", "vi")
        # A session's action without its CSRF token is refused with a toast, not a crash.
        r = client.post(f"/console/incidents/{uuid.uuid4()}/actions/verify",
                        headers={"HX-Request": "true"})
        assert r.status_code == 403 and 'class="toast error"' in r.text
        r = client.post(f"/console/incidents/{uuid.uuid4()}/actions/verify")  # no JS
        assert r.status_code == 403 and "<!doctype html>" in r.text and "tải lại" in r.text
    # Leave no failures behind: they count against 127.0.0.1 for other tests' logins.
    with live_server.engine.begin() as conn:
        conn.execute(text("delete from login_attempts where username in (:a, :b)"),
                     {"a": who, "b": "operator1"})


def test_report_to_close_across_console_and_officer_phone(
    desktop: Callable[..., BrowserContext], browser: Browser, live_server: LiveServer,
    staff: dict[str, Any], artifacts_dir: Path,
) -> None:
    # --- the operator's console is open before the report arrives ---
    op = sign_in(desktop().new_page(), "operator1", "/console")
    op.goto(NEWEST)
    errors = watch_errors(op)
    expect(op.locator("#live")).to_have_attribute("data-state", "on")
    op.evaluate("window.__sameDocument = true")
    description = f"Giật túi xách người đi đường, đối tượng chạy xe máy {uuid.uuid4().hex[:6]}"
    accepted = _report(live_server.url, description, photo=True)
    code, incident_id = accepted["tracking_code"], accepted["incident_id"]

    item = op.locator(f"#incident-list li[data-id='{incident_id}']")
    # Pushed by SSE, no reload: it waits behind the bar (rows never move by themselves).
    expect(op.locator("#new-bar")).to_contain_text("báo tin mới", timeout=20_000)
    op.locator("#new-bar").click()
    expect(item).to_be_visible()
    assert op.evaluate("window.__sameDocument") is True
    expect(item).to_contain_text(code)
    expect(item).to_have_class(re.compile(r"\bfresh\b"))  # flagged as new
    expect(item.locator(".prio")).to_have_text("P2")
    expect(op.locator("#map path.mk").first).to_be_attached()
    item.locator("a").click()
    detail = op.locator("#detail")
    expect(detail.locator("#d-code")).to_have_text(code)
    expect(detail.locator("#d-desc")).to_have_text(description)
    expect(detail.locator("#d-ward")).to_contain_text(staff["ward"]["name"])
    expect(detail.locator(".media img")).to_have_count(1)
    expect(detail.locator("#mini-map .leaflet-interactive").first).to_be_attached()
    expect(detail.locator("#d-countdown")).not_to_be_empty()
    # Only the actions the API allows are offered.
    expect(detail.locator("#btn-verify")).to_be_visible()
    expect(detail.locator("#btn-route")).to_have_count(0)
    expect(detail.locator("#btn-close")).to_have_count(0)

    detail.locator("#btn-verify").click()
    expect(detail.locator(".d-head .state")).to_have_text("Đã xác minh")
    expect(op.locator("#toasts")).to_contain_text("Đã xác minh.")
    detail.locator(".prio-pick label.p1").click()
    detail.locator("#btn-classify").click()
    expect(detail.locator(".d-head .state")).to_have_text("Đã phân loại")
    expect(detail.locator(".d-head .prio")).to_have_text("P1")
    route_unit = detail.locator("#route-unit")
    expect(route_unit.locator("option:checked")).to_contain_text(staff["ward"]["name"])
    detail.locator("#btn-route").click()
    expect(detail.locator(".d-head .state")).to_have_text("Đã chuyển xử lý")
    expect(detail.locator("#d-unit")).to_contain_text(staff["ward"]["name"])
    expect(item.locator(".state")).to_have_text("Đã chuyển xử lý")

    # An illegal transition (verify again) is a toast; the page keeps working.
    op.evaluate("(id) => htmx.ajax('POST', '/console/incidents/' + id + '/actions/verify',"
                " {target: '#detail', swap: 'outerHTML'})", incident_id)
    expect(op.locator("#toasts .toast.error")).to_contain_text("Không thể thực hiện")
    expect(detail.locator("#d-code")).to_have_text(code)
    op.locator(".col-detail").evaluate("e => { e.scrollTop = 0; }")
    op.screenshot(path=artifacts_dir / "staff-console.png")

    # --- an officer of another ward does not see it ---
    other = browser.new_context(**{**PHONE, "base_url": live_server.url})
    try:
        page = sign_in(other.new_page(), staff["other_officer"], "/officer")
        expect(page.locator("h1")).to_contain_text("Nhiệm vụ")
        expect(page.locator(f"#card-{code}")).to_have_count(0)
        assert page.request.get(f"/api/v1/incidents/{incident_id}").status == 404
        listing = page.request.get("/api/v1/incidents").json()
        assert incident_id not in {i["id"] for i in listing["items"]}
    finally:
        other.close()

    # --- the ward's officer, on a phone with GPS ---
    ph = browser.new_context(**{**PHONE, "base_url": live_server.url,
                                "geolocation": {"latitude": 10.7760, "longitude": 106.7000},
                                "permissions": ["geolocation"]})
    ph.set_default_timeout(15_000)
    try:
        officer = sign_in(ph.new_page(), staff["officer"], "/officer")
        o_errors = watch_errors(officer)
        card = officer.locator(f"#card-{code}")
        expect(card).to_be_visible()
        expect(card.locator(".dist")).to_contain_text("Cách")
        expect(card.locator("a.maplink")).to_have_attribute("href", re.compile(r"^geo:10\.77"))
        assert officer.evaluate("document.documentElement.scrollWidth") <= 360
        officer.screenshot(path=artifacts_dir / "staff-officer-routed.png", full_page=True)
        card.locator(".btn-ack").click()
        expect(card.locator(".o-state .state")).to_have_text("Đã tiếp nhận")
        expect(op.locator("#detail .d-head .state")).to_have_text("Đã tiếp nhận",
                                                                   timeout=20_000)
        card.locator(".btn-arrive").click()
        expect(card.locator(".o-state .state")).to_have_text("Tại hiện trường")
        card.locator(".btn-info").click()  # the citizen's photo, loaded on demand
        expect(card.locator(".more-body .media img")).to_have_count(1)
        expect(card.locator(".more-body .timeline")).to_contain_text("Tiếp nhận")
        card.locator(".btn-note").click()
        card.locator(".note-form textarea").fill("Đã lấy lời khai nhân chứng")
        card.locator("input[data-upload]").set_input_files(files=[png_file("bien-ban.png")])
        expect(card.locator(".thumb.done img")).to_have_count(1)
        card.locator(".note-form button[type=submit]").click()
        expect(officer.locator("#toasts")).to_contain_text("Đã lưu ghi chú.")
        card.locator(".btn-close").click()
        card.locator("select.outcome").select_option("resolved")
        card.locator("textarea.summary").fill("Đã bắt giữ đối tượng, giao công an phường")
        officer.screenshot(path=artifacts_dir / "staff-officer-close.png", full_page=True)
        card.locator(".btn-close-send").click()
        expect(officer.locator("#toasts")).to_contain_text("Đã kết thúc vụ việc.")
        expect(officer.locator(f"#card-{code}")).to_have_count(0)
        assert o_errors == [], o_errors
    finally:
        ph.close()

    live_server.wait_for("select state from incidents where id = :i",
                         lambda s: s == "closed", i=incident_id)
    expect(op.locator("#detail .d-head .state")).to_have_text("Đã kết thúc", timeout=20_000)
    timeline = op.locator("#d-timeline")
    expect(timeline).to_contain_text("Đã lấy lời khai nhân chứng")
    expect(timeline).to_contain_text("Đã giải quyết")
    expect(op.locator("#detail .media img")).to_have_count(2)
    # The list shows open incidents only: closed, it is marked gone in its place (rows
    # never move by themselves), and leaves when the operator re-sorts.
    expect(item).to_have_class(re.compile(r"\bgone\b"))
    op.locator("#new-bar").click()
    expect(item).to_have_count(0)
    op.screenshot(path=artifacts_dir / "staff-console-closed.png")
    unexpected = [e for e in errors if "409" not in e]  # the deliberate illegal verify
    assert unexpected == [], unexpected


def test_duplicate_merged_and_routed_to_a_ward_from_console(
    desktop: Callable[..., BrowserContext], browser: Browser, live_server: LiveServer,
    staff: dict[str, Any], artifacts_dir: Path,
) -> None:
    first = _report(live_server.url, f"Đánh nhau trước cổng chợ {uuid.uuid4().hex[:6]}")
    live_server.wait_for_incident(first["incident_id"])
    second = _report(live_server.url, f"Nhóm thanh niên đánh nhau {uuid.uuid4().hex[:6]}")
    live_server.wait_for("select duplicate_count from incidents where id = :i",
                         lambda n: (n or 0) >= 1, i=second["incident_id"])
    # The ward's officer has the phone page open before anything is routed.
    ph = browser.new_context(**{**PHONE, "base_url": live_server.url})
    officer = sign_in(ph.new_page(), staff["officer"], "/officer")
    expect(officer.locator("#live")).to_have_attribute("data-state", "on")
    expect(officer.locator(f"#card-{first['tracking_code']}")).to_have_count(0)

    page = sign_in(desktop().new_page(), "operator1", "/console")
    errors = watch_errors(page)
    page.goto(f"{NEWEST}&selected={second['incident_id']}")
    detail = page.locator("#detail")
    expect(detail.locator("#d-dups")).to_contain_text(first["tracking_code"])
    detail.locator("#merge-into").select_option(first["incident_id"])
    detail.locator("#btn-merge").click()
    expect(detail.locator(".d-head .state")).to_have_text("Đã gộp")
    expect(detail.locator(".actions")).to_have_count(0)  # nothing left to do
    # The live feed's refresh marks the merged one as gone from the list, in its place
    # (rows never move by themselves).
    expect(page.locator(f"#incident-list li[data-id='{second['incident_id']}']")).to_have_class(
        re.compile(r"\bgone\b"))

    # The first one: verify, then route by ward (not by unit).
    page.locator(f"#incident-list li[data-id='{first['incident_id']}'] a").click()
    expect(detail.locator("#d-code")).to_have_text(first["tracking_code"])
    detail.locator("#btn-verify").click()
    expect(detail.locator(".d-head .state")).to_have_text("Đã xác minh")
    detail.locator("#route-ward").select_option(str(staff["ward"]["code"]))
    detail.locator("#btn-route").click()
    expect(detail.locator(".d-head .state")).to_have_text("Đã chuyển xử lý")
    expect(detail.locator("#d-unit")).to_contain_text(staff["ward"]["name"])
    listed = page.locator("#incident-list")
    expect(listed.locator(f"li[data-id='{second['incident_id']}']")).to_have_class(
        re.compile(r"\bgone\b"))
    expect(listed.locator(f"li[data-id='{first['incident_id']}'] .state")).to_have_text(
        "Đã chuyển xử lý")
    page.locator(".col-detail").evaluate("e => { e.scrollTop = 0; }")
    page.screenshot(path=artifacts_dir / "staff-console-merge.png")
    assert errors == [], errors
    # Routed to the officer's unit: the card arrives on the phone without a reload.
    expect(officer.locator(f"#card-{first['tracking_code']}")).to_be_visible(timeout=20_000)
    ph.close()


def test_supervisor_alerts_and_stats(
    desktop: Callable[..., BrowserContext], live_server: LiveServer, staff: dict[str, Any],
    artifacts_dir: Path,
) -> None:
    # An incident with very short deadlines, routed so that a supervisor can act on it.
    scale = live_server.settings.sla_scale
    live_server.settings.sla_scale = 0.005
    try:
        accepted = _report(live_server.url, f"Cháy quán ăn, khói lớn {uuid.uuid4().hex[:6]}",
                           category="fire_explosion")
    finally:
        live_server.settings.sla_scale = scale
    iid, code = accepted["incident_id"], accepted["tracking_code"]
    live_server.wait_for_incident(iid)
    headers = bearer(live_server.url, "operator1")
    act(live_server.url, headers, iid, "verify")
    act(live_server.url, headers, iid, "route", {"unit_id": "pccc"})
    live_server.wait_for("select count(*) from alerts where incident_id = :i and state = "
                         "'routed' and resolved_at is null", lambda n: n >= 1, i=iid)

    page = sign_in(desktop().new_page(), "supervisor1", "/console")
    errors = watch_errors(page)
    page.click("nav a[href='/supervisor']")
    page.wait_for_url(re.compile(r"/supervisor$"))
    alert = page.locator(f"#alert-{code}")
    expect(alert).to_be_visible()
    expect(alert.locator(".esc")).to_contain_text("Quá hạn cấp")
    expect(alert.locator(".since")).to_have_text(re.compile(r"\d+:\d\d"))
    assert int(page.locator("#n-total").inner_text()) >= 1
    expect(page.locator("#n-sla")).to_have_text(re.compile(r"\d+%"))
    expect(page.locator("#chart-category rect.bar").first).to_be_visible()
    expect(page.locator("#chart-ward text.lbl").first).to_contain_text("Phường")
    expect(page.locator("#chart-hour rect.bar")).to_have_count(24)
    page.screenshot(path=artifacts_dir / "staff-supervisor.png", full_page=True)

    alert.locator("summary", has_text="Phát cảnh báo").click()
    alert.locator("input[name=headline]").fill("Cháy tại khu chợ Bến Thành")
    alert.locator("input[name=instruction]").fill("Tránh xa khu vực, nhường đường xe cứu hoả")
    alert.locator("button", has_text="Phát cảnh báo").click()
    expect(page.locator("#toasts")).to_contain_text("Đã phát cảnh báo cộng đồng.")
    live_server.wait_for("select count(*) from public_alerts where incident_id = :i",
                         lambda n: n == 1, i=iid)
    alert = page.locator(f"#alert-{code}")
    alert.locator("summary", has_text="Điều chuyển").click()
    alert.locator("select[name=unit_id]").select_option(label="Cảnh sát 113 (Phản ứng nhanh)")
    alert.locator("input[name=reason]").fill("PCCC đang bận, điều 113 hỗ trợ")
    alert.locator("button", has_text="Điều chuyển").click()
    expect(page.locator("#toasts")).to_contain_text("Đã điều chuyển.")
    live_server.wait_for("select unit_name from incidents where id = :i",
                         lambda u: u and "113" in u, i=iid)
    # Still overdue under the new unit (tiny deadlines): the alert comes back, live.
    alert = page.locator(f"#alert-{code}")
    expect(alert).to_be_visible(timeout=20_000)
    alert.locator("summary", has_text="Kết thúc").click()
    alert.locator("select[name=outcome]").select_option("false_alarm")
    alert.locator("input[name=summary]").fill("Đã kiểm tra, chỉ là khói bếp")
    alert.locator("button", has_text="Kết thúc").click()
    expect(page.locator("#toasts")).to_contain_text("Đã kết thúc vụ việc.")
    expect(page.locator(f"#alert-{code}")).to_have_count(0)
    assert live_server.scalar("select state from incidents where id = :i", i=iid) == "closed"
    assert errors == [], errors


def test_officer_card_drops_when_reassigned_and_a_stale_console_action_says_why(
    desktop: Callable[..., BrowserContext], phone: Callable[..., BrowserContext],
    live_server: LiveServer, staff: dict[str, Any], artifacts_dir: Path,
) -> None:
    """Issue #7: a supervisor reassigns an incident while its ward's officer has it on the
    phone: the card leaves at once with a note why, and an action on a stale copy is 409
    'đã chuyển cho đơn vị khác'. An operator acting on a console panel that someone else
    changed meanwhile gets a 412 message naming who, and the panel shows the new state."""
    accepted = _report(live_server.url, f"Đánh nhau trước quán {uuid.uuid4().hex[:6]}")
    code, iid = accepted["tracking_code"], accepted["incident_id"]
    with httpx.Client(base_url=live_server.url, timeout=20,
                      headers=bearer(live_server.url, "supervisor1")) as api:
        deadline = time.monotonic() + 20
        while api.get(f"/api/v1/incidents/{iid}").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        r = api.post(f"/api/v1/incidents/{iid}/actions/verify", json={})
        assert r.status_code == 200, r.text
        r = api.post(f"/api/v1/incidents/{iid}/actions/route",
                     json={"ward_code": staff["ward"]["code"]})
        assert r.status_code == 200, r.text
        other_unit = live_server.scalar(
            "select unit_id from users where username = :u", u=staff["other_officer"])

        # The operator opens the incident in the console (version 2) and starts
        # re-routing it: picking a unit marks the form in use, so no refresh lands on it.
        op = sign_in(desktop().new_page(), "operator1", "/console")
        op.goto(f"{NEWEST}&selected={iid}")
        expect(op.locator("#d-code")).to_have_text(code)
        op.select_option("#route-unit", index=0)
        op.locator("#route-unit").dispatch_event("input")

        ph = phone()
        officer = sign_in(ph.new_page(), staff["officer"], "/officer")
        card = officer.locator(f"#card-{code}")
        expect(card).to_be_visible()

        r = api.post(f"/api/v1/incidents/{iid}/actions/reassign",
                     json={"unit_id": other_unit, "reason": "Đơn vị gần hơn"})
        assert r.status_code == 200, r.text

    # The officer's card leaves with a note why, without a reload.
    expect(officer.locator("#toasts")).to_contain_text(code, timeout=20_000)
    expect(officer.locator("#toasts")).to_contain_text("đơn vị khác")
    expect(card).to_have_count(0, timeout=20_000)
    officer.screenshot(path=artifacts_dir / "staff-officer-card-left.png", full_page=True)
    moved = httpx.post(f"{live_server.url}/api/v1/incidents/{iid}/actions/acknowledge",
                       headers=bearer(live_server.url, staff["officer"]), json={})
    assert moved.status_code == 409 and "đơn vị khác" in moved.json()["detail"]

    # The operator's form still carries version 2: routing now is refused as stale, the
    # message names the supervisor's change, and the panel then shows it.
    op.click("#btn-route")
    expect(op.locator("#toasts")).to_contain_text("supervisor1", timeout=15_000)
    op.screenshot(path=artifacts_dir / "staff-console-stale.png", full_page=True)
    expect(op.locator("#detail form.act-route input[name=version]")).to_have_value(
        "3", timeout=15_000)
