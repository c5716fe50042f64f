"""The citizen app in headless Chromium at a phone viewport, against a live server.

Each test saves screenshots into test-artifacts/ for people to look at.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.web.conftest import HERE, LiveServer
from tests.web.steps import (
    TRACKING_PAGE,
    act,
    bearer,
    fill_report,
    png_file,
    post_report,
    send_report_form,
    watch_errors,
)

pytestmark = pytest.mark.browser

FIRST_LOAD_BUDGET = 300_000
INCIDENTS_BY_DESCRIPTION = "select count(*) from incidents where description = :d"
REPORTS_BY_DESCRIPTION = (
    "select count(*) from reports where payload->>'description' = :d"
)


def _open_report_page(ctx: BrowserContext) -> tuple[Page, list[str]]:
    page = ctx.new_page()
    errors = watch_errors(page)
    page.goto("/")
    return page, errors


def test_report_with_photo_reaches_tracking_page(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone()
    page, errors = _open_report_page(ctx)
    expect(page.locator("#loc-status")).to_contain_text("sai số khoảng 35 m")
    expect(page.locator("#ward-name")).to_contain_text("Phường")
    description = f"Hai xe máy va chạm trước chợ, một người bị thương {uuid.uuid4().hex[:6]}"
    fill_report(page, "traffic_accident", description)
    page.set_input_files("#files-gallery", files=[png_file("hien-truong.png")])
    expect(page.locator(".thumb.ready")).to_have_count(1)  # uploaded after the report
    expect(page.locator(".thumb img")).to_have_count(1)
    page.fill("#name", "Nguyễn Văn A")
    page.fill("#phone", "0912 345 678")
    page.screenshot(path=artifacts_dir / "web-report-filled.png", full_page=True)

    send_report_form(page)
    code = page.locator("#tracking-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{8}", code)
    expect(page.locator("#state-text")).to_contain_text("Đã nhận báo tin")
    expect(page.locator("#uploads-status")).to_contain_text("Đã gửi báo tin và 1 ảnh/video")
    expect(page.locator("#attachment-count")).to_have_text("1")
    expect(page.locator(".steps li.current")).to_contain_text("Đã nhận")
    expect(page.locator("#copy-btn")).to_be_visible()
    page.screenshot(path=artifacts_dir / "web-tracking.png", full_page=True)

    # The incident reached the workflow and the read model, with the photo and location.
    live_server.wait_for("select count(*) from incidents where tracking_code = :c",
                         lambda n: n == 1, c=code)
    row = live_server.rows(
        "select id, category, lat, lon, accuracy_m, reporter_phone, ward_code "
        "from incidents where tracking_code = :c", c=code)[0]
    assert row["category"] == "traffic_accident"
    assert abs(row["lat"] - HERE["latitude"]) < 1e-4
    assert abs(row["lon"] - HERE["longitude"]) < 1e-4
    assert row["accuracy_m"] == pytest.approx(35, abs=1)
    assert row["reporter_phone"] == "+84912345678"  # E.164
    live_server.wait_for("select count(*) from attachments where incident_id = :i",
                         lambda n: n == 1, i=row["id"])

    # Add information, then cancel (nobody has acknowledged yet).
    page.fill("#info-text", "Người bị thương đã được đưa lên vỉa hè.")
    page.click("#add button[type=submit]")
    expect(page.locator("main > .banner.ok")).to_contain_text("Đã gửi thông tin bổ sung")
    page.locator("#cancel-box summary").click()
    page.fill("#cancel-reason", "Đã có người gọi 113")
    page.click("#cancel-confirm")
    expect(page.locator("#state-text")).to_contain_text("Bạn đã huỷ báo tin này")
    expect(page.locator("#cancel-box")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "web-tracking-cancelled.png", full_page=True)
    live_server.wait_for("select state from incidents where id = :i",
                         lambda s: s == "cancelled", i=row["id"])
    assert errors == []


def test_offline_report_is_sent_once_when_back_online(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone()
    page, errors = _open_report_page(ctx)
    expect(page.locator("#loc-status")).to_contain_text("sai số")
    description = f"Cháy quán ăn, khói nhiều {uuid.uuid4().hex[:6]}"
    fill_report(page, "fire_explosion", description)

    ctx.set_offline(True)
    page.set_input_files("#files-camera", files=[png_file("khoi.png")])
    expect(page.locator(".thumb.ready")).to_contain_text("gửi ngay sau báo tin")
    page.click("#send")
    status = page.locator("#outbox-status")
    expect(status).to_contain_text("Đang chờ gửi")
    expect(page.locator("#report-form")).to_be_hidden()
    page.wait_for_function("CBOutbox.all().then(e => e.length === 1 && e[0].files.length === 1)")
    stored = page.evaluate("CBOutbox.all()")
    assert len(stored) == 1 and stored[0]["body"]["description"] == description
    assert [f["name"] for f in stored[0]["files"]] == ["khoi.png"]
    report_id = stored[0]["report_id"]
    page.screenshot(path=artifacts_dir / "web-offline-waiting.png", full_page=True)
    assert live_server.scalar(REPORTS_BY_DESCRIPTION, d=description) == 0

    ctx.set_offline(False)
    link = page.locator("#outbox-status a.tracking-link")
    expect(link).to_be_visible(timeout=20_000)
    expect(status).to_contain_text("Mã theo dõi")
    page.screenshot(path=artifacts_dir / "web-offline-sent.png", full_page=True)
    assert page.evaluate("CBOutbox.all()") == []

    # Sending the same report again (a lost answer, a second tab) changes nothing.
    again = httpx.post(f"{live_server.url}/api/v1/reports", json=stored[0]["body"])
    assert again.status_code == 202
    assert again.json()["incident_id"] == report_id
    # The same id with another body reveals nothing.
    other = httpx.post(f"{live_server.url}/api/v1/reports",
                       json={**stored[0]["body"], "description": "Một tin báo khác"})
    assert other.status_code == 409 and "tracking_token" not in other.text
    live_server.wait_for(INCIDENTS_BY_DESCRIPTION, lambda n: n == 1, d=description)
    assert live_server.scalar(REPORTS_BY_DESCRIPTION, d=description) == 1
    assert live_server.scalar(
        "select id from incidents where description = :d", d=description) == report_id
    # The photo followed the report, through the upload queue.
    live_server.wait_for("select count(*) from attachments where incident_id = :i",
                         lambda n: n == 1, i=report_id)

    expect(page.locator("#new-report")).to_be_visible()
    link.click()
    page.wait_for_url(TRACKING_PAGE)
    expect(page.locator("#state-text")).to_be_visible()
    assert errors == [] or all("ERR_INTERNET_DISCONNECTED" in e for e in errors)


def test_a_file_that_is_not_a_photo_is_refused_on_the_phone(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    """A file that is not a photo or video is refused when chosen (by its bytes, as the
    server would), next to the photos, nothing typed lost; removed, the report goes."""
    ctx = phone()
    page, _ = _open_report_page(ctx)
    expect(page.locator("#loc-status")).to_contain_text("sai số")
    description = f"Mất trộm xe máy {uuid.uuid4().hex[:6]}"
    fill_report(page, "crime", description)
    page.fill("#phone", "0912345678")
    page.set_input_files("#files-gallery", files=[
        {"name": "not-a-photo.png", "mimeType": "image/png", "buffer": b"just text"}])
    expect(page.locator(".thumb.failed")).to_contain_text("Chỉ nhận ảnh hoặc video")
    page.click("#send")
    expect(page.locator("#err-media")).to_contain_text("Có tệp không gửi được")
    expect(page.locator("#description")).to_have_value(description)
    expect(page.locator("input[value=crime]")).to_be_checked()
    page.screenshot(path=artifacts_dir / "web-file-refused.png", full_page=True)
    assert live_server.scalar(REPORTS_BY_DESCRIPTION, d=description) == 0
    page.locator(".thumb .remove").click()
    expect(page.locator("#err-media")).to_be_hidden()
    send_report_form(page)
    assert live_server.scalar(REPORTS_BY_DESCRIPTION, d=description) == 1


def test_validation_errors_are_shown_and_values_kept(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone()
    page, errors = _open_report_page(ctx)
    expect(page.locator("#loc-status")).to_contain_text("sai số")
    page.fill("#phone", "12345")
    page.click("#send")
    expect(page.locator("#err-category")).to_contain_text("Hãy chọn loại sự việc")
    expect(page.locator("#err-description")).to_contain_text("Hãy mô tả")
    # A phone the page cannot read never blocks a report (the operator sees it flagged).
    expect(page.locator("#err-phone")).to_be_hidden()
    expect(page.locator("#err-location")).to_be_hidden()
    expect(page.locator("#phone")).to_have_value("12345")
    page.screenshot(path=artifacts_dir / "web-validation-js.png", full_page=True)
    # Each message goes as soon as its field is fixed, before sending again.
    page.locator("label.cat-crime").click()
    expect(page.locator("#err-category")).to_be_hidden()
    expect(page.locator("#f-category")).not_to_have_class(re.compile("has-error"))
    expect(page.locator("#err-description")).to_be_visible()

    # Fixing the fields clears their messages and the report goes through.
    fill_report(page, "crime", "Giật túi xách rồi chạy về hướng chợ")
    page.fill("#phone", "+84 (0) 912 345 678")
    send_report_form(page)
    assert errors == []
    phone_stored = live_server.scalar(
        "select reporter_phone from incidents where description = :d",
        d="Giật túi xách rồi chạy về hướng chợ")
    assert phone_stored in (None, "+84912345678")  # None until the projection wrote it


def test_form_works_without_javascript(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone(java_script_enabled=False)
    page = ctx.new_page()
    page.goto("/")
    expect(page.locator("#lat")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.fill("#address", "Trước số 12 Lê Lợi")
    page.fill("#name", "Trần Thị B")
    page.click("#send")
    expect(page.locator("#err-category")).to_contain_text("Hãy chọn loại sự việc")
    expect(page.locator("#err-description")).to_contain_text("Hãy mô tả")
    expect(page.locator("#address")).to_have_value("Trước số 12 Lê Lợi")
    expect(page.locator("#name")).to_have_value("Trần Thị B")
    page.screenshot(path=artifacts_dir / "web-validation-nojs.png", full_page=True)

    description = f"Có người đánh nhau trước cửa hàng {uuid.uuid4().hex[:6]}"
    page.check("input[name=category][value=crime]")
    page.fill("#description", description)
    page.fill("#lat", "10,7731")
    page.fill("#lon", "106.7012")
    page.set_input_files("#files-gallery", files=[png_file("anh.png")])
    send_report_form(page)
    expect(page.locator("#attachment-count")).to_have_text("1")
    code = page.locator("#tracking-code").inner_text().strip()
    live_server.wait_for("select count(*) from incidents where tracking_code = :c",
                         lambda n: n == 1, c=code)
    row = live_server.rows("select lat, lon, address from incidents where tracking_code = :c",
                           c=code)[0]
    assert (row["lat"], row["lon"]) == (pytest.approx(10.7731), pytest.approx(106.7012))
    assert row["address"] == "Trước số 12 Lê Lợi"
    page.screenshot(path=artifacts_dir / "web-tracking-nojs.png", full_page=True)


def test_location_denied_falls_back_to_the_map_pin(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone(permissions=[], geolocation=None)
    page, errors = _open_report_page(ctx)
    expect(page.locator("#loc-status")).to_contain_text("Không lấy được vị trí")
    expect(page.locator("#retry-gps")).to_be_visible()
    expect(page.locator(".leaflet-marker-icon")).to_be_visible()
    description = f"Xe tải chắn ngang đường, kẹt xe {uuid.uuid4().hex[:6]}"
    fill_report(page, "other", description)
    page.click("#send")
    expect(page.locator("#err-location")).to_contain_text("Cần vị trí")
    page.screenshot(path=artifacts_dir / "web-location-denied.png", full_page=True)

    # Drag the pin a little to the north-east.
    pin = page.locator(".leaflet-marker-icon").bounding_box()
    assert pin is not None
    x, y = pin["x"] + pin["width"] / 2, pin["y"] + pin["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 30, y - 40, steps=8)
    page.mouse.up()
    expect(page.locator("#loc-status")).to_contain_text("Đã chọn vị trí trên bản đồ")
    expect(page.locator("#err-location")).to_be_hidden()
    lat = float(page.input_value("#lat"))
    lon = float(page.input_value("#lon"))
    assert lat > 10.7769 and lon > 106.7009
    page.screenshot(path=artifacts_dir / "web-location-pin.png", full_page=True)
    send_report_form(page)
    code = page.locator("#tracking-code").inner_text().strip()
    live_server.wait_for("select count(*) from incidents where tracking_code = :c",
                         lambda n: n == 1, c=code)
    row = live_server.rows(
        "select lat, lon, accuracy_m from incidents where tracking_code = :c", c=code)[0]
    assert (row["lat"], row["lon"]) == (pytest.approx(lat, abs=1e-5), pytest.approx(lon, abs=1e-5))
    assert row["accuracy_m"] is None
    assert errors == []


def test_first_load_is_light_and_strict(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone(service_workers="block")
    page = ctx.new_page()
    requests = []
    page.on("requestfinished", lambda req: requests.append(req))
    response = page.goto("/", wait_until="networkidle")
    assert response is not None
    expect(page.locator("#ward-name")).to_be_visible()
    page.wait_for_load_state("networkidle")
    sizes = {}
    for req in requests:
        s = req.sizes()
        sizes[req.url] = s["responseBodySize"] + s["responseHeadersSize"]
    total = sum(sizes.values())
    (artifacts_dir / "web-first-load.json").write_text(
        json.dumps({"total_bytes": total, "by_url": sizes}, indent=1))
    assert total < FIRST_LOAD_BUDGET, sizes

    # Strict CSP, no inline scripts or handlers.
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = response.text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+=", html)

    # Touch targets and width: nothing wider than the phone, buttons at least 48 px high.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for selector in ("#send", ".cat-box", "label.file-btn", "#description", "#phone"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["height"] >= 48, selector

    # Every visible control has a label; the map has a name.
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll(
        'input:not([type=hidden]), textarea, select, button')).filter(el =>
        !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
        && !el.textContent.trim()).map(el => el.outerHTML)""")
    assert unlabelled == []
    assert page.get_attribute("#map", "aria-label")


def test_english_switch_and_cookie(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    ctx = phone()
    page = ctx.new_page()
    page.goto("/?lang=en")
    expect(page.locator("h1")).to_have_text("Report an incident")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto("/")
    expect(page.locator("label.cat-fire_explosion")).to_contain_text("Fire")
    page.click("#send")
    expect(page.locator("#err-category")).to_contain_text("Choose what kind")
    page.screenshot(path=artifacts_dir / "web-report-en.png", full_page=True)
    page.click("a.lang")
    expect(page.locator("h1")).to_have_text("Báo tin sự việc")


def test_installable_and_shell_works_offline(
    phone: Callable[..., BrowserContext], live_server: LiveServer
) -> None:
    ctx = phone()
    page = ctx.new_page()
    page.goto("/")
    manifest = httpx.get(f"{live_server.url}/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    data = manifest.json()
    assert data["start_url"].startswith("/") and data["display"] == "standalone"
    for icon in data["icons"]:
        assert httpx.get(live_server.url + icon["src"]).status_code == 200, icon["src"]
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    ctx.set_offline(True)
    page.reload()
    expect(page.locator("#report-form")).to_be_visible()
    expect(page.locator("label.cat-crime")).to_be_visible()
    ctx.set_offline(False)


def test_tracking_partial_for_htmx_and_ward_boundary(live_server: LiveServer) -> None:
    body = {"category": "other", "description": "Cây đổ chắn đường",
            "location": {"lat": 10.7769, "lon": 106.7009}}
    accepted = httpx.post(f"{live_server.url}/api/v1/reports", json=body).json()
    token = accepted["tracking_token"]
    partial = httpx.get(f"{live_server.url}/t/{token}", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<section id="status"')
    assert 'hx-trigger="every 15s, refresh"' in partial.text
    assert "<!doctype" not in partial.text.lower()
    assert accepted["tracking_code"] in partial.text

    ward = httpx.get(f"{live_server.url}/geo/ward", params={"lat": 10.7769, "lon": 106.7009})
    assert ward.status_code == 200
    feature = ward.json()
    assert feature["type"] == "Feature" and feature["properties"]["name"].startswith("Phường")
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    # Outside the city (Hà Nội): still 200, so the phone logs no failed request.
    far = httpx.get(f"{live_server.url}/geo/ward", params={"lat": 21.03, "lon": 105.85})
    assert far.status_code == 200
    assert far.json()["properties"]["outside_city"] is True
    assert far.json()["geometry"] is None
    assert far.json()["properties"]["name"]  # the nearest ward, for the message


def test_unknown_tracking_link_and_vendor_files(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}/t/not-a-real-token")
    assert r.status_code == 404 and "Không tìm thấy báo tin" in r.text
    r = httpx.get(f"{live_server.url}/static/vendor/leaflet/leaflet.js",
                  headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert httpx.get(f"{live_server.url}/static/vendor/../package.json").status_code == 404
    sw = httpx.get(f"{live_server.url}/sw.js")
    assert sw.headers["service-worker-allowed"] == "/"


def test_tracking_page_follows_the_incident(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    """An operator verifies the report; the open tracking page shows it without a reload."""
    headers = bearer(live_server.url, *live_server.new_staff("operator"))
    accepted = post_report(live_server.url, "Trộm cắp trong hẻm", accuracy_m=None)
    live_server.wait_for_incident(accepted["incident_id"])

    page = phone().new_page()
    errors = watch_errors(page)
    page.goto(f"/t/{accepted['tracking_token']}")
    expect(page.locator(".steps li.current")).to_contain_text("Đã nhận")
    act(live_server.url, headers, accepted["incident_id"], "verify")
    page.evaluate("htmx.trigger('#status', 'refresh')")  # instead of waiting 15 s
    expect(page.locator("#state-text")).to_contain_text("Trung tâm đã xác minh")
    expect(page.locator(".steps li.current")).to_contain_text("Đã xác minh")
    expect(page.locator(".steps li.done")).to_have_count(1)
    page.screenshot(path=artifacts_dir / "web-tracking-verified.png", full_page=True)
    assert errors == []


def test_too_large_photo_is_refused_before_upload(
    phone: Callable[..., BrowserContext], live_server: LiveServer
) -> None:
    """A photo over the image limit is refused on the phone: no data spent sending it."""
    ctx = phone()
    page, errors = _open_report_page(ctx)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/attachments" in r.url else None)
    limit = int(page.locator("#report-form").get_attribute("data-max-image") or 0)
    assert limit == 20 * 1024 * 1024
    # JPEG bytes the phone cannot decode (so cannot shrink): sent as they are, too large.
    page.set_input_files("#files-gallery", files=[
        {"name": "qua-lon.jpg", "mimeType": "image/jpeg",
         "buffer": b"\xff\xd8\xff\xe0" + b"\0" * (limit + 1)}])
    expect(page.locator(".thumb.failed")).to_have_count(1)
    expect(page.locator(".thumb.failed")).to_contain_text("quá lớn")
    assert uploads == []
    assert not errors
