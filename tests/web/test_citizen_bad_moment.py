"""The citizen app at a bad moment on a bad network, in phone-sized Chromium.

The report leaves before its photos (a 10 MB camera photo on a 750 kbit/s uplink, throttled
through CDP), survives the page being closed mid-upload, a silent SOS makes no sound or
vibration call, and a phone outside the city gets a plain message and no failed request.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Route, expect

from tests.web.conftest import HERE, LiveServer
from tests.web.steps import (
    NEWEST,
    TRACKING_PAGE,
    act,
    bearer,
    fill_report,
    open_report_form,
    png_file,
    post_report,
    send_report_form,
    sign_in,
    upload_png,
    watch_errors,
)

pytestmark = pytest.mark.browser

INCIDENTS_BY_DESCRIPTION = "select count(*) from incidents where description = :d"
HANOI = {"latitude": 21.0285, "longitude": 105.8542, "accuracy": 20}


def _watch_errors(page: Page) -> list[str]:
    """The page's errors and every answer of 400 or more: a bad moment leaves none."""
    return watch_errors(page, failed_requests=True)


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
    fill_report(page, "traffic_accident", description)
    send_report_form(page)
    # The row is written at receipt, the flag once the ward look-up is recorded.
    flagged = live_server.wait_for(
        "select outside_city from incidents where description = :d",
        lambda v: v is True, d=description)
    assert flagged is True
    assert errors == []


def _first_unit(live_server: LiveServer, headers: dict[str, str]) -> dict:
    """The first unit GET /api/v1/units lists (id, name, …)."""
    units = httpx.get(f"{live_server.url}/api/v1/units", headers=headers).json()
    return (units["items"] if isinstance(units, dict) else units)[0]


def _report(live_server: LiveServer, description: str) -> dict:
    accepted = post_report(live_server.url, description, accuracy_m=None)
    live_server.wait_for_incident(accepted["incident_id"])
    return accepted


def test_tracking_page_tells_the_story(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path
) -> None:
    """Steps in plain words, the police's public note (not the internal one), what the
    citizen added shown back, only the citizen's files counted, the closing outcome and
    summary; the refresh never replaces what the person is typing."""
    sup = bearer(live_server.url, *live_server.new_staff("supervisor"))
    accepted = _report(live_server, f"Trộm xe trong hẻm {uuid.uuid4().hex[:6]}")
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    mine = upload_png(live_server.url)
    added = httpx.post(f"{live_server.url}/api/v1/track/{token}/info",
                       json={"text": "Kẻ trộm mặc áo xanh, đi xe Wave.", "attachments": [mine]})
    assert added.status_code == 200, added.text
    act(live_server.url, sup, iid, "verify", {})
    unit = _first_unit(live_server, sup)
    act(live_server.url, sup, iid, "route", {"unit_id": unit["id"]})
    staff_photo = upload_png(live_server.url, headers=sup)
    act(live_server.url, sup, iid, "note", {"text": "Đã cử tổ tuần tra đến.", "public": True,
                                            "attachments": [staff_photo]})
    act(live_server.url, sup, iid, "note", {"text": "Nội bộ: kiểm tra camera.", "public": False})

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
    act(live_server.url, sup, iid, "close", {"outcome": "resolved",
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
    sup = bearer(live_server.url, *live_server.new_staff("supervisor"))
    primary = _report(live_server, f"Cướp giật ở chợ {uuid.uuid4().hex[:6]}")
    child = _report(live_server, f"Thấy cướp giật ở chợ {uuid.uuid4().hex[:6]}")
    act(live_server.url, sup, primary["incident_id"], "verify", {})
    act(live_server.url, sup, child["incident_id"], "merge",
        {"into_incident_id": primary["incident_id"]})
    unit = _first_unit(live_server, sup)
    act(live_server.url, sup, primary["incident_id"], "route", {"unit_id": unit["id"]})
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


# --- the report leaves first ----------------------------------------------------------------

UPLINK_750K = {"offline": False, "latency": 150, "downloadThroughput": 1_600_000 / 8,
               "uploadThroughput": 750_000 / 8}
UPLINK_100K = {"offline": False, "latency": 300, "downloadThroughput": 400_000 / 8,
               "uploadThroughput": 100_000 / 8}

# A camera-like photo: 4000×3000, gradients, shapes and sensor-like noise, JPEG quality 1.0
# (about 10 MB), made by the browser's own encoder.
_CAMERA_JPEG_JS = """async () => {
  const c = document.createElement('canvas'); c.width = 4000; c.height = 3000;
  const g = c.getContext('2d');
  const grad = g.createLinearGradient(0, 0, 4000, 3000);
  grad.addColorStop(0, '#4a6fa5'); grad.addColorStop(0.5, '#e0c080');
  grad.addColorStop(1, '#305030');
  g.fillStyle = grad; g.fillRect(0, 0, 4000, 3000);
  for (let i = 0; i < 400; i++) { g.fillStyle = `hsl(${i*37%360},60%,${30+i%40}%)`;
    g.beginPath(); g.arc((i*733)%4000, (i*411)%3000, 20 + i%120, 0, 7); g.fill(); }
  const img = g.getImageData(0, 0, 4000, 3000); const d = img.data; let s = 12345;
  for (let i = 0; i < d.length; i += 4) { s = (s * 1103515245 + 12345) & 0x7fffffff;
    const n = (s % 25) - 12; d[i] += n; d[i+1] += n; d[i+2] += n; }
  g.putImageData(img, 0, 0);
  const blob = await new Promise(r => c.toBlob(r, 'image/jpeg', 1.0));
  const bytes = new Uint8Array(await blob.arrayBuffer()); let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}"""


@pytest.fixture(scope="module")
def camera_jpeg(browser: Browser) -> bytes:
    page = browser.new_page()
    try:
        data = base64.b64decode(page.evaluate(_CAMERA_JPEG_JS))
    finally:
        page.close()
    assert data[:3] == b"\xff\xd8\xff" and len(data) > 9_500_000, len(data)
    return data


def _throttle(ctx: BrowserContext, page: Page, conditions: dict) -> CDPSession:
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", conditions)
    return cdp


def test_report_leaves_first_and_a_10mb_photo_follows_on_a_slow_uplink(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
    camera_jpeg: bytes,
) -> None:
    ctx = phone()
    page = ctx.new_page()
    errors = _watch_errors(page)
    _throttle(ctx, page, UPLINK_750K)
    description = f"Cướp giật điện thoại, đi xe máy về hướng cầu {uuid.uuid4().hex[:6]}"
    open_report_form(page, "crime", description)
    page.set_input_files("#files-camera", files=[
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": camera_jpeg}])
    ready = page.locator(".thumb.ready")
    expect(ready).to_contain_text("gốc 9,")  # shrunk on the phone, the original's size shown
    page.screenshot(path=artifacts_dir / "web-slow-photo-chosen.png", full_page=True)

    started = time.monotonic()
    page.click("#send")
    live_server.wait_for(INCIDENTS_BY_DESCRIPTION, lambda n: n == 1, timeout=5.0, d=description)
    report_s = time.monotonic() - started
    assert report_s < 5.0
    incident_id = live_server.scalar("select id from incidents where description = :d",
                                     d=description)
    page.wait_for_url(TRACKING_PAGE)
    expect(page.locator("#uploads-status")).to_contain_text("Đã gửi báo tin — đang tải ảnh 1/1")
    expect(page.locator("#uploads-list progress")).to_be_visible()
    page.screenshot(path=artifacts_dir / "web-slow-photo-uploading.png", full_page=True)

    live_server.wait_for("select count(*) from attachments where incident_id = :i",
                         lambda n: n == 1, timeout=60, i=incident_id)
    photo_s = time.monotonic() - started
    row = live_server.rows("select size, content_type from attachments where incident_id = :i",
                           i=incident_id)[0]
    assert row["content_type"] == "image/jpeg"
    assert row["size"] < 1_000_000  # a few hundred KB, not 10 MB
    expect(page.locator("#uploads-status")).to_contain_text("Đã gửi báo tin và 1 ảnh/video")
    expect(page.locator("#attachment-count")).to_have_text("1")
    page.screenshot(path=artifacts_dir / "web-slow-photo-done.png", full_page=True)
    (artifacts_dir / "web-slow-uplink.json").write_text(json.dumps({
        "uplink_kbit_s": 750, "original_bytes": len(camera_jpeg), "uploaded_bytes": row["size"],
        "report_in_read_model_s": round(report_s, 2), "photo_attached_s": round(photo_s, 2)},
        indent=1))
    assert errors == []


def test_closing_the_page_mid_upload_keeps_the_report_and_the_photo_follows_later(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
    camera_jpeg: bytes,
) -> None:
    ctx = phone()
    page = ctx.new_page()
    _throttle(ctx, page, UPLINK_100K)
    description = f"Đánh nhau trước quán, có hung khí {uuid.uuid4().hex[:6]}"
    open_report_form(page, "crime", description)
    page.set_input_files("#files-camera", files=[
        {"name": "IMG_0002.jpg", "mimeType": "image/jpeg", "buffer": camera_jpeg},
        png_file("nho.png")])
    expect(page.locator(".thumb.ready")).to_have_count(2)
    send_report_form(page)
    tracking_url = page.url
    expect(page.locator("#uploads-status")).to_contain_text("đang tải ảnh 1/2")
    page.screenshot(path=artifacts_dir / "web-closed-mid-upload.png", full_page=True)
    page.close()

    incident_id = live_server.wait_for(
        "select id from incidents where description = :d", lambda v: v is not None,
        d=description)
    assert live_server.scalar(
        "select count(*) from attachments where incident_id = :i", i=incident_id) == 0

    # Opened again (a good connection now): the queue in IndexedDB sends what was left.
    again = ctx.new_page()
    errors = _watch_errors(again)
    again.goto(tracking_url)
    live_server.wait_for("select count(*) from attachments where incident_id = :i",
                         lambda n: n == 2, timeout=60, i=incident_id)
    expect(again.locator("#uploads-status")).to_contain_text("Đã gửi báo tin và 2 ảnh/video")
    again.screenshot(path=artifacts_dir / "web-reopened-upload-done.png", full_page=True)
    assert errors == []


def test_busy_server_429_waits_retry_after_and_keeps_the_queue(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    """The first attach is answered 429 Retry-After: 3; the page says so, waits and
    attaches the photo afterwards, once."""
    ctx = phone()
    page = ctx.new_page()
    refused: list[str] = []

    def busy_once(route: Route) -> None:
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=429, headers={"Retry-After": "3"}, content_type="application/json",
                          body=json.dumps({"error": "rate_limited", "detail": "busy"}))
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/track/[^/]+/info$"), busy_once)
    description = f"Tụ tập đua xe {uuid.uuid4().hex[:6]}"
    open_report_form(page, "other", description)
    page.set_input_files("#files-gallery", files=[png_file("xe.png")])
    expect(page.locator(".thumb.ready")).to_have_count(1)
    send_report_form(page)
    expect(page.locator("#uploads-status")).to_contain_text("máy chủ bận")
    page.screenshot(path=artifacts_dir / "web-upload-429.png", full_page=True)
    expect(page.locator("#uploads-status")).to_contain_text("Đã gửi báo tin và 1 ảnh/video",
                                                            timeout=20_000)
    incident_id = live_server.scalar("select id from incidents where description = :d",
                                     d=description)
    assert live_server.scalar(
        "select count(*) from attachments where incident_id = :i", i=incident_id) == 1
    assert live_server.scalar(
        "select count(*) from incident_events where incident_id = :i and action = 'add_info'",
        i=incident_id) == 1
    assert len(refused) == 1


def test_both_stores_down_503_keeps_the_report_queued_until_retry_after(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    """POST /reports is answered 503 Retry-After: 2 (the database and Temporal both down):
    the report waits on the phone ("Đang chờ gửi"), is not sent again before Retry-After,
    and reaches the server once afterwards."""
    ctx = phone()
    page = ctx.new_page()
    refused: list[float] = []
    sent: list[float] = []

    def down_once(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
        elif not refused:
            refused.append(time.monotonic())
            route.fulfill(status=503, headers={"Retry-After": "2"},
                          content_type="application/json",
                          body=json.dumps({"error": "unavailable", "detail": "down"}))
        else:
            sent.append(time.monotonic())
            route.continue_()

    ctx.route(re.compile(r"/api/v1/reports$"), down_once)
    description = f"Cháy bãi rác {uuid.uuid4().hex[:6]}"
    open_report_form(page, "other", description)
    page.click("#send")
    expect(page.locator("#pending-text")).to_contain_text("tạm thời chưa nhận")
    page.screenshot(path=artifacts_dir / "web-report-503.png", full_page=True)
    expect(page.locator("#outbox-status .sent")).to_be_visible(timeout=30_000)
    assert live_server.scalar(INCIDENTS_BY_DESCRIPTION, d=description) in (0, 1)
    assert len(refused) == 1 and sent and sent[0] - refused[0] >= 2
    assert live_server.scalar("select count(*) from reports where payload->>'description' = :d",
                              d=description) == 1


# --- silent SOS -------------------------------------------------------------------------------

# Records every way a page could make a sound or vibrate.
_NOISE_PROBE = """
(() => {
  window.__noise = [];
  const note = (what) => window.__noise.push(what);
  if (navigator.vibrate) navigator.vibrate = function () { note('vibrate'); return true; };
  for (const name of ['AudioContext', 'webkitAudioContext', 'OfflineAudioContext']) {
    if (window[name]) { const Real = window[name];
      window[name] = function (...a) { note(name); return new Real(...a); }; }
  }
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    note('play'); return play.apply(this, arguments); };
  if (window.speechSynthesis) window.speechSynthesis.speak = function () { note('speak'); };
  if (window.Notification) window.Notification = function () { note('notification'); };
  window.Audio = function () { note('Audio'); return document.createElement('audio'); };
})();
"""


def test_silent_sos_sends_at_once_without_sound_or_vibration(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    ctx = phone()
    ctx.add_init_script(_NOISE_PROBE)
    page = ctx.new_page()
    errors = _watch_errors(page)
    page.goto("/")
    expect(page.locator("#loc-status")).to_contain_text("sai số")
    page.click("#sos")
    done = page.locator("#sos-done")
    expect(done).to_contain_text("Đã gửi.")
    expect(page.locator("#report-form")).to_be_hidden()
    code = page.locator("#sos-code").inner_text().split()[-1]
    page.screenshot(path=artifacts_dir / "web-sos-sent.png", full_page=True)
    row = live_server.rows(
        "select i.category, i.description, i.lat, r.payload->>'silent' as silent "
        "from incidents i join reports r on r.id = i.id where i.tracking_code = :c",
        c=code) if live_server.wait_for(
            "select count(*) from incidents where tracking_code = :c", lambda n: n == 1,
            c=code) else []
    assert row[0]["category"] == "crime"
    assert row[0]["description"] == "SOS — báo tin im lặng"
    assert row[0]["lat"] == pytest.approx(HERE["latitude"], abs=1e-4)
    assert row[0]["silent"] == "true"
    assert page.evaluate("window.__noise") == []
    assert errors == []

    # Details can follow from the tracking page.
    details = page.locator("#sos-details")
    expect(details).to_be_visible()
    details.click()
    page.wait_for_url(TRACKING_PAGE)
    expect(page.locator(".badge-silent")).to_be_visible()
    page.fill("#info-text", "Có 2 người lạ trong nhà, tôi đang trốn trên gác.")
    page.click("#add button[type=submit]")
    expect(page.locator("#timeline li.mine")).to_contain_text("đang trốn trên gác")
    assert page.evaluate("window.__noise") == []

    # A long press on a category sends an SOS of that kind.
    other = ctx.new_page()
    other.goto("/")
    expect(other.locator("#loc-status")).to_contain_text("sai số")
    box = other.locator("label.cat-fire_explosion").bounding_box()
    assert box is not None
    other.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    other.mouse.down()
    other.wait_for_timeout(1500)
    other.mouse.up()
    expect(other.locator("#sos-done")).to_contain_text("Đã gửi.")
    code2 = other.locator("#sos-code").inner_text().split()[-1]
    assert live_server.wait_for("select category from incidents where tracking_code = :c",
                                lambda v: v is not None, c=code2) == "fire_explosion"
    assert other.evaluate("window.__noise") == []

    # The operator console marks it.
    username, password = live_server.new_staff("operator")
    sup = sign_in(ctx.new_page(), username, "/console", password)
    sos_id = live_server.scalar("select id from incidents where tracking_code = :c", c=code)
    sup.goto(f"{NEWEST}&selected={sos_id}")
    expect(sup.locator(f'.inc-link[data-code="{code}"] .badge-silent')).to_be_visible()
    expect(sup.locator("#d-silent")).to_be_visible()
    sup.screenshot(path=artifacts_dir / "web-console-sos-badge.png", full_page=True)


def test_without_indexeddb_the_photo_still_follows_the_report(
    phone: Callable[..., BrowserContext], live_server: LiveServer,
) -> None:
    """Some in-app browsers have no IndexedDB: no queue, so the page sends the files itself
    right after the report, and nothing fails in the console."""
    ctx = phone()
    ctx.add_init_script("Object.defineProperty(window, 'indexedDB', {value: undefined})")
    page = ctx.new_page()
    errors = _watch_errors(page)
    description = f"Cây đổ đè xe máy {uuid.uuid4().hex[:6]}"
    open_report_form(page, "other", description)
    page.set_input_files("#files-gallery", files=[png_file("cay.png")])
    expect(page.locator(".thumb.ready")).to_have_count(1)
    send_report_form(page)
    incident_id = live_server.wait_for("select id from incidents where description = :d",
                                       lambda v: v is not None, d=description)
    live_server.wait_for("select count(*) from attachments where incident_id = :i",
                         lambda n: n == 1, i=incident_id)
    expect(page.locator("#uploads")).to_be_hidden()
    assert errors == []
