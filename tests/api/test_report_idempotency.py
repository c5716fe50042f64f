"""A repeated report_id tells the truth (issue #9, 4): the first answer only for the same
body; another body with a used id is 409 and reveals nothing (no token, no incident data).
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select, update

from schema.tables import Report
from tests.api.conftest import Stack
from tests.images import real_image


async def _reports_with_id(stack: Stack, report_id: str) -> int:
    async with stack.infra.db.session() as s:
        return (await s.execute(select(func.count()).select_from(Report)
                                .where(Report.id == report_id))).scalar_one()


def _reveals_nothing(r, first: dict) -> None:
    assert r.status_code == 409, r.text
    assert set(r.json()) == {"error", "detail"} and r.json()["error"] == "report_id_conflict"
    for secret in (first["tracking_token"], first["tracking_code"], first["incident_id"]):
        assert secret not in r.text


async def _photo(stack: Stack, data: bytes) -> str:
    r = await stack.client.post("/api/v1/attachments", files={"file": ("p.jpg", data)})
    assert r.status_code == 201, r.text
    return r.json()["attachment_id"]


async def test_same_body_gets_the_first_answer_another_body_409(stack: Stack) -> None:
    body = stack.report_body()
    first = (await stack.client.post("/api/v1/reports", json=body)).json()
    again = await stack.client.post("/api/v1/reports", json=dict(body))
    assert again.status_code == 202 and again.json() == first
    # Whitespace the validation strips is not a difference.
    again = await stack.client.post("/api/v1/reports",
                                    json={**body, "description": f"  {body['description']} "})
    assert again.status_code == 202 and again.json() == first

    for change in ({"description": "Một chuyện khác hẳn"}, {"category": "other"},
                   {"location": {"lat": 10.78, "lon": 106.70}},
                   {"reporter": {"name": "Kẻ khác", "phone": "0987654321"}},
                   {"address": "Số 1 Nguyễn Huệ"}):
        r = await stack.client.post("/api/v1/reports", json={**body, **change})
        _reveals_nothing(r, first)
    r = await stack.client.post("/api/v1/reports", json={**body, "description": "x"},
                                headers={"Accept-Language": "en"})
    assert "already used for a different report" in r.json()["detail"]
    assert await _reports_with_id(stack, body["report_id"]) == 1


async def test_photos_count_by_their_content(stack: Stack) -> None:
    photo_a = real_image("JPEG", (64, 48))
    body = stack.report_body(attachments=[await _photo(stack, photo_a)])
    first = (await stack.client.post("/api/v1/reports", json=body)).json()
    # The same photo uploaded again (as the no-JS form does on every post): same report.
    again = await stack.client.post("/api/v1/reports", json={
        **body, "attachments": [await _photo(stack, photo_a)]})
    assert again.status_code == 202 and again.json() == first
    # Another photo, no photo, or an unknown id: another report.
    other = await _photo(stack, real_image("JPEG", (48, 64)))
    for attachments in ([other], [], [str(uuid.uuid4())]):
        r = await stack.client.post("/api/v1/reports", json={**body,
                                                             "attachments": attachments})
        _reveals_nothing(r, first)


async def test_a_report_without_a_stored_print_never_matches(stack: Stack) -> None:
    """Reports accepted before fingerprints existed: their token is not given out."""
    body = stack.report_body()
    first = (await stack.client.post("/api/v1/reports", json=body)).json()
    async with stack.infra.db.session() as s:
        await s.execute(update(Report).where(Report.id == body["report_id"])
                        .values(fingerprint=None))
        await s.commit()
    _reveals_nothing(await stack.client.post("/api/v1/reports", json=body), first)


async def test_concurrent_submissions_with_one_id(stack: Stack) -> None:
    body = stack.report_body()
    other = {**body, "description": "Nội dung khác gửi cùng lúc"}
    answers = await asyncio.gather(
        *(stack.client.post("/api/v1/reports", json=b) for b in (body, other, body)))
    codes = sorted(r.status_code for r in answers)
    assert await _reports_with_id(stack, body["report_id"]) == 1
    winner = next(r.json() for r in answers if r.status_code == 202)
    async with stack.infra.db.session() as s:
        stored = await s.get(Report, body["report_id"])
    assert stored is not None
    if stored.payload["description"] == body["description"]:
        assert codes == [202, 202, 409]
    else:
        assert codes == [202, 409, 409]
    for r in answers:
        if r.status_code == 202:
            assert r.json() == winner
        else:
            _reveals_nothing(r, winner)
