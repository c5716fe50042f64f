"""Text at the boundary, end to end on PostgreSQL (which refuses NUL in text): a NUL or
another control character in any text a citizen, an agency or a staff member sends is
removed before it is stored, so every incident reaches the read model and the console, and
no later action is wedged (issues #9 and #10)."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from schema.tables import Incident, IncidentEvent, PublicAlert
from tests.api.conftest import WARD_A, Stack, eventually

BAD = "\x00\x0b\x01\ufffe\ud800"  # NUL, Word's line break, SOH, a noncharacter, a lone surrogate
FORM_BAD = BAD[:-1]  # a form cannot carry a lone surrogate (it is not UTF-8)


async def _post(stack: Stack, path: str, body: dict, who: str | None = None) -> Any:
    """POST JSON as a careless client encodes it: `\\ud800` escapes stay in the text."""
    headers = {"Content-Type": "application/json", **(stack.auth(who) if who else {})}
    return await stack.client.post(path, content=json.dumps(body).encode(), headers=headers)


async def _row(stack: Stack, iid: str) -> Incident:
    async with stack.infra.db.session() as s:
        row = await s.get(Incident, iid)
    assert row is not None
    return row


async def _in_console(stack: Stack, code: str) -> bool:
    # Newest first: the fresh report is on the first page whatever else is open.
    r = await stack.client.get("/console/incidents", params={"sort": "newest"},
                               headers=stack.auth("operator"))
    assert r.status_code == 200, r.text
    return code in r.text


async def test_nul_in_every_citizen_text_is_stored_clean_and_listed(stack: Stack) -> None:
    place = stack.people.places[WARD_A]
    tag = uuid.uuid4().hex[:6]
    # 1. The JSON API.
    body = stack.report_body(
        description=f"Cướp{BAD} giật {tag}\x00", address=f"12\x00 Lê Lợi{BAD}",
        reporter={"name": f"Nguyễn\x00 Văn A{BAD}", "phone": "09\x0012 345 678"})
    r = await _post(stack, "/api/v1/reports", body)
    assert r.status_code == 202, r.text
    api_id, api_code = r.json()["incident_id"], r.json()["tracking_code"]
    # 2. The no-JavaScript form.
    r = await stack.client.post("/report", data={
        "report_id": str(uuid.uuid4()), "category": "other",
        "description": f"Đánh{FORM_BAD} nhau {tag}", "lat": str(place.lat), "lon": str(place.lon),
        "address": "Chợ\x00 Bến Thành", "name": "Trần\x00 B", "phone": "+84 (0) 912 345 678"})
    assert r.status_code == 303, r.text
    token = r.headers["location"].rsplit("/", 1)[-1]
    form_code = (await stack.client.get(f"/api/v1/track/{token}")).json()["tracking_code"]
    # 3. Open311.
    r = await stack.client.post("/open311/v2/requests.json", data={
        "service_code": "fire_explosion", "lat": str(place.lat), "long": str(place.lon),
        "description": f"Khói{FORM_BAD} {tag}", "first_name": "Lan\x00", "address_string": "A\x00"})
    assert r.status_code == 201, r.text
    o311_id = r.json()[0]["service_request_id"]

    ids = {api_id: f"Cướp\n giật {tag}", o311_id: f"Khói\n {tag}"}
    for iid, description in ids.items():
        await stack.wait_projected(iid)
        assert (await _row(stack, iid)).description == description
    row = await _row(stack, api_id)
    assert row.address == "12 Lê Lợi" and row.reporter_name == "Nguyễn Văn A"
    assert row.reporter_phone == "+84912345678"
    async with stack.infra.db.session() as s:
        form_row = (await s.execute(
            Incident.__table__.select().where(Incident.tracking_code == form_code))).one()
    assert form_row.description == f"Đánh\n nhau {tag}" and form_row.address == "Chợ Bến Thành"
    assert form_row.reporter_name == "Trần B" and form_row.reporter_phone == "+84912345678"
    for code in (api_code, form_code):
        await eventually(lambda c=code: _in_console(stack, c))
    # A search with a NUL is an ordinary search, not a 500.
    r = await stack.client.get("/api/v1/incidents", params={"q": f"giật\x00 {tag}"},
                               headers=stack.auth("operator"))
    assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [api_id]


async def test_nul_in_staff_texts_never_wedges_an_incident(stack: Stack) -> None:
    iid = await stack.routed()
    action = f"/api/v1/incidents/{iid}/actions"
    r = await _post(stack, f"{action}/note", {"text": f"Đã gọi{BAD}lại\x00", "public": True},
                    "operator")
    assert r.status_code == 200, r.text
    headline = "Cháy lớn\x0bchợ Bến Thành\x00"
    r = await _post(stack, f"{action}/publish_alert", {
        "headline": headline, "instruction": f"Tránh xa{BAD}", "radius_m": 500}, "supervisor")
    assert r.status_code == 200, r.text
    # Later actions still work and the read model follows the workflow.
    r = await stack.act(iid, "acknowledge", "officer_a")
    assert r.status_code == 200, r.text

    async def acknowledged() -> bool:
        return (await _row(stack, iid)).state == "acknowledged"
    await eventually(acknowledged)
    async with stack.infra.db.session() as s:
        notes = (await s.execute(IncidentEvent.__table__.select().where(
            IncidentEvent.incident_id == iid, IncidentEvent.action == "note"))).all()
        alerts = (await s.execute(PublicAlert.__table__.select().where(
            PublicAlert.incident_id == iid))).all()
    assert [n.public_note for n in notes] == ["Đã gọi\nlại"]
    assert [a.headline for a in alerts] == ["Cháy lớn chợ Bến Thành"]
    assert alerts[0].instruction == "Tránh xa"
    # The feed stays well-formed for every consumer.
    feed = (await stack.client.get("/cap/alerts.atom")).content
    ET.fromstring(feed)
    assert re.search("Cháy lớn chợ Bến Thành".encode(), feed)


async def test_nul_in_paths_queries_cursors_and_names_is_a_4xx(stack: Stack) -> None:
    import base64

    h = stack.auth("operator")
    bad_cursor = base64.urlsafe_b64encode(
        json.dumps(["2026-01-01T00:00:00+00:00", "x\x00y", 0]).encode()).decode()
    answers = [
        await stack.client.get("/api/v1/track/abc%00def"),
        await stack.client.post("/api/v1/track/abc%00def/cancel", json={}),
        await stack.client.get("/api/v1/incidents", params={"cursor": bad_cursor}, headers=h),
        await stack.client.get("/api/v1/incidents", params={"unit": "a\x00"}, headers=h),
        await stack.client.get("/api/v1/units", params={"kind": "ward\x00"}, headers=h),
        await stack.client.get("/api/v1/stats", params={"category": "crime\x00"}, headers=h),
        await stack.client.post("/api/v1/auth/token", data={
            "username": f"nobody.{uuid.uuid4().hex[:6]}\x00", "password": "x"}),
        await stack.client.get("/open311/v2/requests.json",
                               params={"service_code": "crime\x00"}, headers=h),
    ]
    codes = [r.status_code for r in answers]
    assert all(400 <= c < 500 or c == 200 for c in codes), codes
    assert codes[0] == 404 and codes[2] == 422 and codes[6] == 401, codes
