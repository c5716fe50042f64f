"""The no-JavaScript forms read their multipart body as it arrives (web/formstream.py).

A too-large or wrong file gives the report form back with the error next to the photo
field and every typed value kept, stores nothing, and stops reading early; a normal post
with a photo still goes through to the tracking page.

The live-server tests (Playwright's sync API) stay at the end of the module: the async
in-process tests run before Playwright claims the main thread's event loop.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from api.upload import ENVELOPE_BYTES
from core.db import Database
from core.settings import Settings
from tests.images import png_claiming
from tests.web.conftest import LiveServer, tiny_png

IMAGE_LIMIT = 4096
VIDEO_LIMIT = 8192
BOUNDARY = "----canhbaoFormBoundary7MA4YWxkTrZu0gW"


def _fields(description: str) -> dict[str, str]:
    return {
        "category": "crime", "description": description, "lat": "10,7731",
        "lon": "106.7012", "accuracy_m": "", "address": "Trước số 12 Lê Lợi",
        "name": "Trần Thị B", "phone": "0901234567",
    }


def _multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A browser-like multipart body: (name, filename or None, content) in form order."""
    out = b""
    for name, filename, content in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        if filename is None:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        else:
            out += (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: image/png\r\n\r\n").encode()
        out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def _report_parts(values: dict[str, str], files: list[tuple[str, bytes]],
                  report_id: str | None = None) -> list[tuple[str, str | None, bytes]]:
    """The report form's fields in the page's order: the file inputs sit in the middle."""
    parts: list[tuple[str, str | None, bytes]] = [
        ("report_id", None, (report_id or str(uuid.uuid4())).encode()),
        ("category", None, values["category"].encode()),
        ("description", None, values["description"].encode()),
        ("files", "", b""),  # the camera input, left empty
    ]
    parts += [("files", name, content) for name, content in files]
    parts += [(k, None, values[k].encode())
              for k in ("lat", "lon", "accuracy_m", "address", "name", "phone")]
    return parts


HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def _big_png(size: int) -> bytes:
    png = tiny_png()
    return png + b"\0" * (size - len(png))


class SmallApp:
    def __init__(self, client: httpx.AsyncClient, settings: Settings, db: Database) -> None:
        self.client = client
        self.settings = settings
        self.db = db

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.session() as s:
            return (await s.execute(text(sql), params)).scalar()

    def stored_files(self) -> list[Path]:
        root = self.settings.storage_dir
        assert root is not None
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest_asyncio.fixture
async def small_app(make_settings: Callable[..., Settings], temporal_env: WorkflowEnvironment,
                    pg_db: Database) -> AsyncIterator[SmallApp]:
    """The app with a 4 KB image / 8 KB video limit, in-process (no worker)."""
    from app import create_app

    settings = make_settings(**{
        "CANHBAO_MAX_IMAGE_BYTES": IMAGE_LIMIT,
        "CANHBAO_MAX_VIDEO_BYTES": VIDEO_LIMIT,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "CANHBAO_TASK_QUEUE": f"webstream-{uuid.uuid4()}",
    })
    app = create_app(settings, run_relay=False)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://test") as client:
            yield SmallApp(client, settings, pg_db)


def _input_value(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page)
    assert match, f"no input {name}"
    return html.unescape(match.group(1))


def _error_of(page: str, name: str) -> str:
    match = re.search(rf'<p class="error" id="err-{name}"[^>]*>([^<]*)</p>', page)
    assert match, f"no error slot {name}"
    return html.unescape(match.group(1))


def _assert_values_kept(page: str, values: dict[str, str]) -> None:
    assert re.search(r'<input type="radio" name="category" value="crime" checked>', page)
    assert html.unescape(page).count(values["description"]) >= 1
    for key in ("lat", "lon", "address", "name", "phone"):
        assert _input_value(page, key) == values[key], key


async def test_too_large_photo_gives_the_form_back(small_app: SmallApp) -> None:
    description = f"Cướp giật điện thoại {uuid.uuid4().hex[:6]}"
    values = _fields(description)
    attachments_before = await small_app.scalar("select count(*) from attachments")
    body = _multipart(_report_parts(values, [("anh-lon.png", _big_png(IMAGE_LIMIT * 3))]))
    r = await small_app.client.post("/report", content=body, headers=HEADERS)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html")
    assert "Tệp quá lớn" in _error_of(r.text, "media") and "anh-lon.png" in r.text
    _assert_values_kept(r.text, values)
    # The whole body was read (fields after the file kept): the connection can stay.
    assert r.headers.get("connection") != "close"
    assert await small_app.scalar("select count(*) from attachments") == attachments_before
    assert small_app.stored_files() == []
    assert await small_app.scalar(
        "select count(*) from reports where payload->>'description' = :d", d=description) == 0


async def test_decompression_bomb_gives_the_form_back(small_app: SmallApp) -> None:
    """A 30000×30000 PNG of a few hundred bytes: refused by its header (422), the message
    by the photo field, every typed value kept, nothing stored."""
    description = f"Ảnh rất lớn {uuid.uuid4().hex[:6]}"
    values = _fields(description)
    body = _multipart(_report_parts(values, [("bom.png", png_claiming(30000, 30000))]))
    r = await small_app.client.post("/report", content=body, headers=HEADERS)
    assert r.status_code == 422
    assert "quá nhiều điểm ảnh" in _error_of(r.text, "media") and "bom.png" in r.text
    _assert_values_kept(r.text, values)
    assert small_app.stored_files() == []
    assert await small_app.scalar(
        "select count(*) from reports where payload->>'description' = :d", d=description) == 0


async def test_resending_the_form_is_the_same_report_only_with_the_same_content(
        small_app: SmallApp) -> None:
    """A form posted twice (a lost answer) uploads its photo twice: still one report. The
    same form id with other content is refused, reveals nothing, and gets a fresh id."""
    values = _fields(f"Gửi hai lần {uuid.uuid4().hex[:6]}")
    report_id = str(uuid.uuid4())
    body = _multipart(_report_parts(values, [("anh.png", tiny_png())], report_id))
    first = await small_app.client.post("/report", content=body, headers=HEADERS)
    again = await small_app.client.post("/report", content=body, headers=HEADERS)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    changed = {**values, "description": "Nội dung khác"}
    body = _multipart(_report_parts(changed, [("anh.png", tiny_png())], report_id))
    r = await small_app.client.post("/report", content=body, headers=HEADERS)
    assert r.status_code == 409
    assert "đã được dùng cho một tin báo khác" in _error_of(r.text, "form")
    assert first.headers["location"].split("/t/")[1] not in r.text
    assert _input_value(r.text, "report_id") not in ("", report_id)
    assert await small_app.scalar("select count(*) from reports where id = :i",
                                  i=report_id) == 1


async def test_wrong_type_and_too_long_fields_keep_the_form(small_app: SmallApp) -> None:
    description = f"Tai nạn giao thông {uuid.uuid4().hex[:6]}"
    values = _fields(description)
    body = _multipart(_report_parts(values, [("ghi-chu.png", b"just some text, not a photo")]))
    r = await small_app.client.post("/report", content=body, headers=HEADERS)
    assert r.status_code == 415
    assert "Chỉ nhận ảnh" in _error_of(r.text, "media")
    _assert_values_kept(r.text, values)

    values["name"] = "x" * (70 * 1024)  # over the 64 KB for all text fields
    body = _multipart(_report_parts(values, []))
    r = await small_app.client.post("/report", content=body, headers=HEADERS)
    assert r.status_code == 413
    assert "quá lớn" in _error_of(r.text, "description")
    assert r.headers.get("connection") == "close"
    assert small_app.stored_files() == []


async def test_reading_stops_soon_after_the_limit(small_app: SmallApp) -> None:
    """A huge file is not read to its end: at most the limit plus one file's worth of
    draining; the fields before it are kept and the connection closes."""
    description = f"Đánh nhau {uuid.uuid4().hex[:6]}"
    values = _fields(description)
    parts = _report_parts(values, [("rat-lon.png", b"@@FILE@@")])
    head, tail = _multipart(parts).split(b"@@FILE@@")
    total = 4 * 1024 * 1024
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        chunks: Iterator[bytes] = iter([head, tiny_png()])
        for chunk in chunks:
            sent += len(chunk)
            yield chunk
        while sent < total:
            sent += 16 * 1024
            yield b"\0" * (16 * 1024)
        yield tail

    r = await small_app.client.post("/report", content=body(), headers=HEADERS)
    assert r.status_code == 413
    assert "Tệp quá lớn" in _error_of(r.text, "media")
    assert r.headers.get("connection") == "close"
    assert sent <= len(head) + IMAGE_LIMIT + VIDEO_LIMIT + ENVELOPE_BYTES + 64 * 1024
    page = html.unescape(r.text)
    assert description in page
    assert re.search(r'name="category" value="crime" checked', r.text)
    assert small_app.stored_files() == []


async def test_declared_body_over_every_limit_stores_nothing(small_app: SmallApp) -> None:
    values = _fields(f"Cháy nhà {uuid.uuid4().hex[:6]}")
    body = _multipart(_report_parts(values, [("anh.png", tiny_png())]))
    headers = {**HEADERS, "Content-Length": str(10 * VIDEO_LIMIT + ENVELOPE_BYTES + 1)}

    async def stream() -> AsyncIterator[bytes]:
        yield body

    r = await small_app.client.post("/report", content=stream(), headers=headers)
    assert r.status_code == 413
    assert "Tệp quá lớn" in _error_of(r.text, "media")
    assert small_app.stored_files() == []


async def test_more_files_than_allowed(small_app: SmallApp) -> None:
    """Ten are stored and shown in the form again; the eleventh is not read into storage."""
    values = _fields(f"Nhiều ảnh {uuid.uuid4().hex[:6]}")
    files = [(f"anh{i}.png", tiny_png()) for i in range(11)]
    r = await small_app.client.post("/report", content=_multipart(_report_parts(values, files)),
                                    headers=HEADERS)
    assert r.status_code == 422
    assert _error_of(r.text, "media") == "Tối đa 10 tệp"
    assert r.text.count('name="attachment_ids"') == 10
    assert len(small_app.stored_files()) == 10
    _assert_values_kept(r.text, values)


def _tracking_token(location: str) -> str:
    match = re.fullmatch(r"/t/([\w-]+)", location)
    assert match, location
    return match.group(1)


async def test_small_photo_still_makes_a_report_and_add_info_refuses_big_files(
    small_app: SmallApp,
) -> None:
    description = f"Mất trộm xe máy {uuid.uuid4().hex[:6]}"
    body = _multipart(_report_parts(_fields(description), [("anh.png", tiny_png())]))
    r = await small_app.client.post("/report", content=body, headers=HEADERS)
    assert r.status_code == 303, r.text[:500]
    token = _tracking_token(r.headers["location"])
    report_id = await small_app.scalar(
        "select id from reports where payload->>'description' = :d", d=description)
    assert report_id is not None
    assert await small_app.scalar(
        "select count(*) from attachments where incident_id = :i", i=report_id) == 1
    assert len(small_app.stored_files()) == 1

    body = _multipart([("text", None, "Thêm ảnh".encode()),
                       ("files", "lon.png", _big_png(IMAGE_LIMIT * 2))])
    r = await small_app.client.post(f"/t/{token}/info", content=body, headers=HEADERS)
    # The tracking page again, with the reason next to the form and the text kept.
    assert r.status_code == 413
    assert "Tệp quá lớn" in r.text and ">Thêm ảnh</textarea>" in r.text
    assert len(small_app.stored_files()) == 1
    r = await small_app.client.post(f"/t/{token}/info",
                                    content=_multipart([("text", None, b"  ")]), headers=HEADERS)
    assert r.status_code == 422 and 'id="err-info" role="alert">' in r.text

    r = await small_app.client.post(f"/t/{uuid.uuid4().hex}/info", content=body,
                                    headers=HEADERS)
    assert r.status_code == 404 and "Không tìm thấy" in r.text


@pytest.mark.browser
def test_plain_post_with_photo_and_add_info_on_the_live_server(
    live_server: LiveServer,
) -> None:
    """Real uvicorn: the no-JS report with a photo reaches tracking, then add-info with a
    photo is linked to the same report."""
    description = f"Có người bị thương {uuid.uuid4().hex[:6]}"
    files = [("files", ("anh.png", tiny_png(), "image/png"))]
    data = _fields(description)
    data["report_id"] = str(uuid.uuid4())
    with httpx.Client(base_url=live_server.url, timeout=20) as client:
        r = client.post("/report", data=data, files=files)
        assert r.status_code == 303, r.text[:500]
        token = _tracking_token(r.headers["location"])
        report_id = live_server.scalar(
            "select id from reports where tracking_token = :t", t=token)
        live_server.wait_for("select count(*) from incidents where id = :i",
                             lambda n: n == 1, i=report_id)
        r = client.post(f"/t/{token}/info", data={"text": "Nạn nhân đã tỉnh"}, files=files)
        assert r.status_code == 303
        assert r.headers["location"] == f"/t/{token}?msg=info"
        assert live_server.scalar(
            "select count(*) from attachments where incident_id = :i", i=report_id) == 2


@pytest.mark.browser
def test_too_large_photo_without_javascript_in_chromium(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    """Chromium without JavaScript posts a photo over the (default 20 MB) limit: the form
    comes back with the Vietnamese error by the photo field and the typed values."""
    limit = live_server.settings.max_image_bytes
    ctx = phone(java_script_enabled=False)
    page = ctx.new_page()
    page.goto("/")
    description = f"Ảnh quá lớn {uuid.uuid4().hex[:6]}"
    page.check("input[name=category][value=fire_explosion]")
    page.fill("#description", description)
    page.fill("#lat", "10,7731")
    page.fill("#lon", "106.7012")
    page.fill("#address", "Trước số 12 Lê Lợi")
    page.fill("#name", "Trần Thị B")
    page.fill("#phone", "0901234567")
    before = live_server.scalar("select count(*) from attachments")
    # 20 MB through the DevTools protocol: slow on a loaded machine, so a longer wait.
    page.set_input_files("#files-gallery", files=[
        {"name": "anh-lon.png", "mimeType": "image/png", "buffer": _big_png(limit + 1)}],
        timeout=60_000)
    with page.expect_navigation(timeout=60_000) as nav:
        page.click("#send")
    response = nav.value
    assert response is not None and response.status == 413
    expect(page.locator("#err-media")).to_contain_text("Tệp quá lớn (tối đa 20 MB)")
    expect(page.locator("#err-media")).to_contain_text("anh-lon.png")
    expect(page.locator("input[name=category][value=fire_explosion]")).to_be_checked()
    expect(page.locator("#description")).to_have_value(description)
    for field, value in (("#lat", "10,7731"), ("#lon", "106.7012"),
                         ("#address", "Trước số 12 Lê Lợi"), ("#name", "Trần Thị B"),
                         ("#phone", "0901234567")):
        expect(page.locator(field)).to_have_value(value)
    page.screenshot(path=artifacts_dir / "web-too-large-nojs.png", full_page=True)
    assert live_server.scalar("select count(*) from attachments") == before
    assert live_server.scalar(
        "select count(*) from reports where payload->>'description' = :d", d=description) == 0
