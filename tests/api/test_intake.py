"""Citizen calls: attachments, reports (durable, idempotent), tracking, add info, cancel."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from api.services.submission import TRACKING_ALPHABET
from schema.ids import workflow_id
from schema.payloads import IncidentState
from schema.tables import Attachment, Incident, IncidentEvent, Outbox, Report
from tests.api.conftest import MEDIA, Stack, eventually


@pytest.mark.parametrize("kind", sorted(MEDIA))
async def test_upload_sniffs_type_from_bytes(stack: Stack, kind: str) -> None:
    data, mime = MEDIA[kind]
    # The declared type and file name lie; the bytes decide.
    r = await stack.client.post("/api/v1/attachments",
                                files={"file": ("photo.txt", data, "text/plain")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["content_type"] == mime
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    async with stack.infra.db.session() as s:
        row = await s.get(Attachment, body["attachment_id"])
    assert row is not None and await stack.infra.storage.exists(row.storage_key)


async def test_upload_rejects_other_types_and_empty_files(stack: Stack) -> None:
    for data in (b"%PDF-1.4 not an image", b"", b"GIF89a" + b"\0" * 50, b"hello " * 1000):
        r = await stack.client.post("/api/v1/attachments",
                                    files={"file": ("x.jpg", data, "image/jpeg")})
        assert r.status_code == 415, r.text
        assert r.json()["error"] == "unsupported_media_type"
    r = await stack.client.post("/api/v1/attachments", data={"nofile": "1"})
    assert r.status_code == 422


async def test_upload_size_limits_by_type(make_stack) -> None:
    stack = await make_stack(with_worker=False, CANHBAO_MAX_IMAGE_BYTES=4096,
                             CANHBAO_MAX_VIDEO_BYTES=64 * 1024)
    jpeg = MEDIA["jpeg"][0] + b"\0" * 5000
    r = await stack.client.post("/api/v1/attachments", files={"file": ("a.jpg", jpeg)},
                                headers={"Accept-Language": "en"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large" and "MB" in r.json()["detail"]
    # The same size is fine for a video, whose limit is larger.
    mp4 = MEDIA["mp4"][0] + b"\0" * 5000
    r = await stack.client.post("/api/v1/attachments", files={"file": ("a.mp4", mp4)})
    assert r.status_code == 201
    big = MEDIA["mp4"][0] + b"\0" * (70 * 1024)
    r = await stack.client.post("/api/v1/attachments", files={"file": ("b.mp4", big)})
    assert r.status_code == 413
    # Nothing of the refused uploads is left in storage.
    files = [p for p in stack.settings.storage_dir.rglob("*") if p.is_file()]
    assert len(files) == 1


async def test_report_is_accepted_and_reaches_a_workflow(stack: Stack) -> None:
    photo = await stack.upload("jpeg")
    body = stack.report_body(attachments=[photo["attachment_id"]])
    r = await stack.client.post("/api/v1/reports", json=body)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["incident_id"] == body["report_id"]
    code = out["tracking_code"]
    assert len(code) == 8 and set(code) <= set(TRACKING_ALPHABET)
    assert len(out["tracking_token"]) >= 22  # >= 128 bits in base64url
    assert out["status_url"] == f"/t/{out['tracking_token']}"
    client = await stack.infra.temporal.get()
    case = await client.get_workflow_handle(workflow_id(out["incident_id"])).query(
        "case", result_type=IncidentState)
    assert case.tracking_code == code
    async with stack.infra.db.session() as s:
        att = await s.get(Attachment, photo["attachment_id"])
    assert att is not None and att.incident_id == out["incident_id"]

    async def projected() -> bool:  # the workflow writes the row; the query may come first
        async with stack.infra.db.session() as s:
            row = await s.get(Incident, out["incident_id"])
        return row is not None and row.reporter_phone == "+84912345678"  # E.164
    await eventually(projected)

    async def marked() -> bool:  # the request marks its row (the relay when it could not)
        async with stack.infra.db.session() as s:
            outbox = await s.get(Outbox, out["incident_id"])
        return outbox is not None and outbox.started_at is not None
    await eventually(marked)


async def test_resubmission_is_idempotent(stack: Stack) -> None:
    body = stack.report_body()
    first = await stack.client.post("/api/v1/reports", json=body)
    again = await stack.client.post("/api/v1/reports", json=body)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    async with stack.infra.db.session() as s:
        count = (await s.execute(select(func.count()).select_from(Report).where(
            Report.id == body["report_id"]))).scalar_one()
    assert count == 1


async def test_concurrent_resubmissions_create_one_report(stack: Stack) -> None:
    import asyncio

    body = stack.report_body()
    answers = await asyncio.gather(*(stack.client.post("/api/v1/reports", json=body)
                                     for _ in range(5)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["tracking_token"] for a in answers}) == 1


@pytest.mark.parametrize(("patch", "field"), [
    ({"category": "weather"}, "category"),
    ({"description": "   "}, "description"),
    ({"description": "x" * 5001}, "description"),
    ({"location": {"lat": 91, "lon": 106.7}}, "location.lat"),
    ({"location": {"lat": 10.7, "lon": -181}}, "location.lon"),
    ({"location": {"lat": 10.7, "lon": 106.7, "accuracy_m": -1}}, "location.accuracy_m"),
    ({"report_id": "not-a-uuid"}, "report_id"),
    ({"attachments": [str(uuid.uuid4())]}, "attachments.0"),
])
async def test_bad_reports_get_field_errors(make_stack, patch: dict, field: str) -> None:
    stack = await make_stack(with_worker=False)
    body = stack.report_body(**patch)
    r = await stack.client.post("/api/v1/reports", json=body)
    assert r.status_code == 422, r.text
    out = r.json()
    assert out["error"] == "validation_error"
    assert field in [f["field"] for f in out["fields"]], out
    r = await stack.client.post("/api/v1/reports", json=body, headers={"Accept-Language": "en"})
    assert r.json()["detail"] == "Invalid input"


async def test_missing_location_and_vietnamese_messages(make_stack) -> None:
    stack = await make_stack(with_worker=False)
    body = stack.report_body()
    del body["location"]
    r = await stack.client.post("/api/v1/reports", json=body)
    assert r.status_code == 422
    assert r.json()["detail"] == "Dữ liệu không hợp lệ"
    assert {"field": "location", "message": "Thiếu trường bắt buộc",
            "type": "missing"} in r.json()["fields"]


async def test_an_attachment_serves_one_report_only(stack: Stack) -> None:
    photo = await stack.upload("png")
    await stack.submit(attachments=[photo["attachment_id"]])
    r = await stack.client.post("/api/v1/reports",
                                json=stack.report_body(attachments=[photo["attachment_id"]]))
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "attachments.0"


async def test_tracking_shows_state_without_staff_details(stack: Stack) -> None:
    out = await stack.submit()
    r = await stack.client.get(f"/api/v1/track/{out['tracking_token']}")
    assert r.status_code == 200
    view = r.json()
    assert view["tracking_code"] == out["tracking_code"]
    assert view["state"] == "received" and view["category"] == "crime"
    assert view["timeline"][0]["state"] == "received"
    assert set(view) == {"tracking_code", "state", "category", "created_at", "updated_at",
                         "timeline", "messages", "outcome", "summary"}
    assert view["outcome"] is None and view["summary"] is None  # tests/api/test_tracking.py
    assert view["messages"] == []  # no staff message yet (tests/api/test_messages.py)
    text = r.text
    assert "912345678" not in text and "Nguyễn" not in text
    assert (await stack.client.get("/api/v1/track/nope")).status_code == 404


async def test_add_info_and_cancel(stack: Stack) -> None:
    out = await stack.submit()
    token = out["tracking_token"]
    video = await stack.upload("mp4")
    r = await stack.client.post(f"/api/v1/track/{token}/info",
                                json={"text": "Đối tượng mặc áo đỏ",
                                      "attachments": [video["attachment_id"]]})
    assert r.status_code == 200, r.text
    async with stack.infra.db.session() as s:
        actions = (await s.execute(select(IncidentEvent.action).where(
            IncidentEvent.incident_id == out["incident_id"]))).scalars().all()
    assert "add_info" in actions
    r = await stack.client.post(f"/api/v1/track/{token}/info", json={})
    assert r.status_code == 422
    r = await stack.client.post(f"/api/v1/track/{token}/cancel", json={"reason": "nhầm"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    # Once ended: no more info, no second cancel.
    r = await stack.client.post(f"/api/v1/track/{token}/info", json={"text": "thêm"})
    assert r.status_code == 409, r.text
    r = await stack.client.post(f"/api/v1/track/{token}/cancel", json={})
    assert r.status_code == 409
    assert (await stack.client.post("/api/v1/track/nope/cancel", json={})).status_code == 404


async def test_cancel_is_refused_once_acknowledged(stack: Stack) -> None:
    iid = await stack.routed()
    async with stack.infra.db.session() as s:
        token = (await s.get(Report, iid)).tracking_token
    r = await stack.act(iid, "acknowledge", "officer_a")
    assert r.status_code == 200, r.text
    r = await stack.client.post(f"/api/v1/track/{token}/cancel", json={},
                                headers={"Accept-Language": "en-US,en;q=0.9"})
    assert r.status_code == 409
    assert "acknowledged" in r.json()["detail"]
    r = await stack.client.post(f"/api/v1/track/{token}/info", json={"text": "vẫn còn đó"})
    assert r.status_code == 200

    async def timeline_has_ack() -> bool:
        view = (await stack.client.get(f"/api/v1/track/{token}")).json()
        return view["state"] == "acknowledged"
    await eventually(timeline_has_ack)


def _multipart_head(boundary: str, name: str = "file", filename: str = "big.jpg") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()


async def test_streamed_upload_stops_reading_at_the_limit(make_stack) -> None:
    """A chunked body (no Content-Length) far larger than the image limit: 413 while the
    server has pulled little more than the limit, and nothing is left in storage."""
    limit = 256 * 1024
    stack = await make_stack(with_worker=False, CANHBAO_MAX_IMAGE_BYTES=limit,
                             CANHBAO_MAX_VIDEO_BYTES=4 * limit)
    boundary = "streamtestboundary"
    piece = 16 * 1024
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        head = _multipart_head(boundary) + MEDIA["jpeg"][0]
        pulled += len(head)
        yield head
        for _ in range(2000):  # ~32 MB if read to the end
            pulled += piece
            yield b"\0" * piece
        tail = f"\r\n--{boundary}--\r\n".encode()
        pulled += len(tail)
        yield tail

    r = await stack.client.post(
        "/api/v1/attachments", content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_large"
    assert limit < pulled <= limit + 4 * piece
    assert [p for p in stack.settings.storage_dir.rglob("*") if p.is_file()] == []

    # A declared Content-Length beyond the video limit is refused before any reading.
    pulled = 0

    async def never() -> AsyncIterator[bytes]:
        nonlocal pulled
        pulled += 1
        yield b"x"

    r = await stack.client.post(
        "/api/v1/attachments", content=never(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                 "Content-Length": str(10 * limit)})
    assert r.status_code == 413 and pulled == 0


async def test_streamed_upload_in_small_pieces_and_odd_bodies(make_stack) -> None:
    """The parser copes with a body cut into tiny pieces, extra fields before the file,
    a truncated body (400, nothing stored) and a body without `file` (422)."""
    stack = await make_stack(with_worker=False)
    boundary = "b0undary"
    data = MEDIA["png"][0] + bytes(range(256)) * 64
    whole = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
             f"hello\r\n").encode() + _multipart_head(boundary, filename="ảnh hiện trường.png") \
        + data \
        + f"\r\n--{boundary}--\r\n".encode()
    ctype = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    async def pieces(blob: bytes, size: int) -> AsyncIterator[bytes]:
        for i in range(0, len(blob), size):
            yield blob[i:i + size]

    r = await stack.client.post("/api/v1/attachments", content=pieces(whole, 7), headers=ctype)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["content_type"] == "image/png" and out["size"] == len(data)
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    async with stack.infra.db.session() as s:
        row = await s.get(Attachment, out["attachment_id"])
    assert row is not None and row.original_name == "ảnh hiện trường.png"
    stored = b"".join([c async for c in stack.infra.storage.open(row.storage_key)])
    assert stored == data

    cut = whole[: len(whole) - 40]  # the closing boundary never comes
    r = await stack.client.post("/api/v1/attachments", content=pieces(cut, 1000),
                                headers=ctype)
    assert r.status_code == 400, r.text
    files = [p for p in stack.settings.storage_dir.rglob("*") if p.is_file()]
    assert files == [stack.settings.storage_dir / row.storage_key]

    only_fields = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
                   f"x\r\n--{boundary}--\r\n").encode()
    r = await stack.client.post("/api/v1/attachments", content=only_fields, headers=ctype)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "file"
    r = await stack.client.post("/api/v1/attachments", content=b"garbage", headers=ctype)
    assert r.status_code == 400
