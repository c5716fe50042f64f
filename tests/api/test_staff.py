"""Staff calls: the lifecycle through actions, error codes, role and unit scoping, list,
export, alerts, reference data, stats and the event stream."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlmodel import col

from schema.tables import Incident, StaffEvent
from tests.api.conftest import WARD_A, WARD_B, Stack, eventually


async def test_whole_lifecycle_with_allowed_actions(stack: Stack) -> None:
    iid = (await stack.submit())["incident_id"]
    await stack.wait_projected(iid)
    r = await stack.detail(iid)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["state"] == "received" and d["live"] is True
    assert d["ward"]["code"] == stack.people.places[WARD_A].code
    assert d["reporter"] == {"name": "Nguyễn Văn A", "phone": "+84912345678",
                             "phone_display": "0912 345 678", "phone_valid": True}
    assert set(d["allowed_actions"]) == {"verify", "reject", "merge", "classify", "note",
                                      "message"}
    assert (await stack.detail(iid, "supervisor")).json()["allowed_actions"]
    assert (await stack.detail(iid, "admin")).json()["allowed_actions"] == []

    steps = [
        ("verify", "operator", {}, "verified"),
        ("classify", "operator", {"category": "traffic_accident", "priority": 1}, "classified"),
        ("route", "operator", {"ward_code": stack.people.places[WARD_A].code}, "routed"),
        ("acknowledge", "officer_a", {}, "acknowledged"),
        ("note", "officer_a", {"text": "Đang di chuyển", "public": True}, "acknowledged"),
        ("arrive", "officer_a", {}, "on_scene"),
        ("close", "officer_a", {"outcome": "resolved", "summary": "Đã xử lý"}, "closed"),
    ]
    for action, who, body, state in steps:
        r = await stack.act(iid, action, who, body)
        assert r.status_code == 200, (action, r.text)
        assert r.json()["state"] == state
    d = r.json()
    assert d["allowed_actions"] == [] and d["outcome"] == "resolved"
    assert d["priority"] == 1 and d["category"] == "traffic_accident"
    actors = {(e["action"], e["actor"]["username"]) for e in d["timeline"]}
    assert ("acknowledge", "t.officer.a") in actors and ("verify", "t.operator") in actors
    # Ended: any further action is an illegal transition.
    r = await stack.act(iid, "note", "operator", {"text": "muộn"})
    assert r.status_code == 409 and r.json()["error"] == "illegal_transition"


async def test_error_codes_of_actions(stack: Stack) -> None:
    iid = (await stack.submit())["incident_id"]
    await stack.wait_projected(iid)
    # 409: acknowledge before routing (the workflow refuses; nothing enters history).
    r = await stack.act(iid, "close", "supervisor", {"outcome": "resolved", "summary": "x"})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "illegal_transition" and r.json()["detail"]
    assert " / " not in r.json()["detail"]
    en = await stack.client.post(f"/api/v1/incidents/{iid}/actions/close",
                                 json={"outcome": "resolved", "summary": "x"},
                                 headers={**stack.auth("supervisor"), "Accept-Language": "en"})
    assert en.status_code == 409 and en.json()["detail"] != r.json()["detail"]
    # In human words, no raw action or state tokens.
    assert r.json()["detail"] == \
        "Không thể thực hiện “Kết thúc”: vụ việc đang ở trạng thái “Mới nhận”"
    assert en.json()["detail"] == "Cannot “Close”: the incident is in state “New”"
    # 403: wrong role (an officer does not even see an unrouted incident: 404).
    r = await stack.act(iid, "acknowledge", "operator")
    assert r.status_code == 403
    assert r.json() == {"error": "forbidden",
                        "detail": "Vai trò trực ban không được phép thực hiện “Tiếp nhận”"}
    r = await stack.act(iid, "verify", "officer_a")
    assert r.status_code == 404
    r = await stack.act(iid, "reassign", "operator", {"ward_code": 1, "reason": "x"})
    assert r.status_code == 403
    # 422: bad bodies, unknown units.
    for action, body in [("classify", {"category": "crime", "priority": 9}),
                         ("classify", {"category": "crime"}),
                         ("reject", {"reason": ""}),
                         ("route", {}),
                         ("route", {"unit_id": "x", "ward_code": 1}),
                         ("route", {"unit_id": "no-such-unit"}),
                         ("route", {"ward_code": 999999}),
                         ("merge", {"into_incident_id": "nope"}),
                         ("merge", {"into_incident_id": str(uuid.uuid4())}),
                         ("merge", {"into_incident_id": iid}),
                         ("verify", {"unexpected": 1})]:
        r = await stack.act(iid, action, "operator", body)
        assert r.status_code == 422, (action, body, r.text)
        assert r.json()["error"] == "validation_error" and "fields" in r.json()
    # 404: unknown incident or action; 401: nobody.
    r = await stack.act(str(uuid.uuid4()), "verify", "operator")
    assert r.status_code == 404
    r = await stack.act(iid, "fly", "operator")
    assert r.status_code == 422
    r = await stack.client.post(f"/api/v1/incidents/{iid}/actions/verify", json={})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = await stack.client.post(f"/api/v1/incidents/{iid}/actions/verify", json={},
                                headers={"Authorization": "Bearer forged.token"})
    assert r.status_code == 401
    # State unchanged by all of that.
    assert (await stack.detail(iid)).json()["state"] == "received"


async def test_idempotency_key_makes_one_change(stack: Stack) -> None:
    iid = (await stack.submit())["incident_id"]
    await stack.wait_projected(iid)
    first = await stack.act(iid, "note", "operator", {"text": "Gọi lại người báo"}, key="k-1")
    again = await stack.act(iid, "note", "operator", {"text": "Gọi lại người báo"}, key="k-1")
    assert first.status_code == again.status_code == 200
    notes = [e for e in again.json()["timeline"] if e["action"] == "note"]
    assert len(notes) == 1
    third = await stack.act(iid, "note", "operator", {"text": "Lần khác"}, key="k-2")
    assert len([e for e in third.json()["timeline"] if e["action"] == "note"]) == 2


async def test_officer_sees_and_acts_only_on_own_unit(stack: Stack) -> None:
    photo = await stack.upload("jpeg")
    iid = await stack.routed(WARD_A, attachments=[photo["attachment_id"]])
    other = await stack.routed(WARD_B)
    # Officer B: the incident of ward A does not exist for them.
    assert (await stack.detail(iid, "officer_b")).status_code == 404
    assert (await stack.act(iid, "acknowledge", "officer_b")).status_code == 404
    r = await stack.client.get(f"/api/v1/attachments/{photo['attachment_id']}/content",
                               headers=stack.auth("officer_b"))
    assert r.status_code == 404
    # Officer A can see it and its photo.
    d = (await stack.detail(iid, "officer_a")).json()
    assert "acknowledge" in d["allowed_actions"]
    url = d["attachments"][0]["url"]
    r = await stack.client.get(url, headers=stack.auth("officer_a"))
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8\xff")
    assert r.headers["content-type"] == "image/jpeg"
    # Nobody without an account sees a file.
    assert (await stack.client.get(url)).status_code == 401
    # Lists, export, events: each officer only their own unit's.
    a_ids = {i["id"] for i in (await stack.client.get(
        "/api/v1/incidents?limit=200", headers=stack.auth("officer_a"))).json()["items"]}
    assert iid in a_ids and other not in a_ids
    csv_text = (await stack.client.get("/api/v1/incidents/export.csv",
                                       headers=stack.auth("officer_b"))).text
    assert other in csv_text and iid not in csv_text
    # Reassign moves it: officer A loses it, officer B gains it.
    r = await stack.act(iid, "reassign", "supervisor",
                        {"unit_id": stack.people.places[WARD_B].unit_id, "reason": "gần hơn"})
    assert r.status_code == 200, r.text
    assert (await stack.detail(iid, "officer_a")).status_code == 404
    assert (await stack.detail(iid, "officer_b")).status_code == 200
    r = await stack.client.get(url, headers=stack.auth("officer_b"))
    assert r.status_code == 200


async def test_list_filters_search_and_cursor(stack: Stack) -> None:
    marker = uuid.uuid4().hex[:10]
    ids = []
    for i in range(5):
        out = await stack.submit(description=f"Cháy nhỏ {marker} số {i}",
                                 category="fire_explosion" if i % 2 else "other")
        ids.append(out["incident_id"])
    for iid in ids:
        await stack.wait_projected(iid)
    h = stack.auth("operator")
    r = await stack.client.get(f"/api/v1/incidents?q={marker}&limit=2", headers=h)
    page = r.json()
    assert [i["id"] for i in page["items"]] == ids[::-1][:2]
    seen = [i["id"] for i in page["items"]]
    while page["next_cursor"]:
        page = (await stack.client.get(
            f"/api/v1/incidents?q={marker}&limit=2&cursor={page['next_cursor']}",
            headers=h)).json()
        seen += [i["id"] for i in page["items"]]
    assert seen == ids[::-1]
    r = await stack.client.get(
        f"/api/v1/incidents?q={marker}&category=fire_explosion&state=received", headers=h)
    assert {i["id"] for i in r.json()["items"]} == {ids[1], ids[3]}
    code = (await stack.detail(ids[2])).json()["tracking_code"]
    r = await stack.client.get(f"/api/v1/incidents?q={code.lower()}", headers=h)
    assert [i["id"] for i in r.json()["items"]] == [ids[2]]
    ward = stack.people.places[WARD_A].code
    r = await stack.client.get(f"/api/v1/incidents?ward={ward}&priority=3&overdue=false&"
                               f"q={marker}", headers=h)
    assert {i["id"] for i in r.json()["items"]} == {ids[0], ids[2], ids[4]}
    assert (await stack.client.get("/api/v1/incidents?cursor=garbage",
                                   headers=h)).status_code == 422
    assert (await stack.client.get("/api/v1/incidents?state=nope",
                                   headers=h)).status_code == 422
    assert (await stack.client.get("/api/v1/incidents")).status_code == 401
    r = await stack.client.get(f"/api/v1/incidents/export.csv?q={marker}", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert [row["id"] for row in rows] == ids[::-1]
    assert rows[0]["tracking_code"] and rows[0]["ward_code"] == str(ward)


async def test_merge_and_publish_alert(stack: Stack) -> None:
    primary = await stack.routed()
    dup = (await stack.submit())["incident_id"]
    await stack.wait_projected(dup)
    r = await stack.act(dup, "merge", "operator", {"into_incident_id": primary})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "merged" and r.json()["merged_into"] == primary
    r = await stack.act(primary, "publish_alert", "supervisor",
                        {"headline": "Cháy tại chợ", "instruction": "Tránh khu vực",
                         "radius_m": 500}, key="alert-1")
    assert r.status_code == 200, r.text
    assert (await stack.act(primary, "publish_alert", "operator",
                            {"headline": "x", "instruction": "y", "radius_m": 500})
            ).status_code == 403


async def test_reference_data(stack: Stack) -> None:
    h = stack.auth("operator")
    units = (await stack.client.get("/api/v1/units", headers=h)).json()
    assert len(units) == 173 and {u["kind"] for u in units} >= {"ward_police", "fire_rescue"}
    assert (await stack.client.get("/api/v1/units")).status_code == 401
    wards = (await stack.client.get("/api/v1/wards")).json()
    assert len(wards) == 168 and wards[0]["geometry"] is None
    a = stack.people.places[WARD_A]
    r = await stack.client.get(f"/api/v1/wards/locate?lat={a.lat}&lon={a.lon}")
    assert r.json()["code"] == a.code and r.json()["exact"] is True
    r = await stack.client.get("/api/v1/wards/locate?lat=21.03&lon=105.85")  # Hà Nội
    assert r.json()["exact"] is False and r.json()["outside_city"] is True
    assert (await stack.client.get("/api/v1/wards/locate?lat=100&lon=0")).status_code == 422
    r = await stack.client.get(f"/api/v1/wards/{a.code}")
    assert r.json()["geometry"]["type"] == "MultiPolygon"
    assert (await stack.client.get("/api/v1/wards/1")).status_code == 404


async def test_alerts_stats_and_events(make_stack) -> None:
    # SLAs scaled down so that an incident goes overdue within a second.
    stack = await make_stack(CANHBAO_SLA_SCALE=0.005)
    h = stack.auth("supervisor")
    start = (await stack.client.get("/api/v1/events?max_seconds=0.1", headers=h))
    assert start.status_code == 200
    async with stack.infra.db.session() as s:
        # Replay from here: other tests' events may be more than one page.
        before = (await s.execute(select(func.max(StaffEvent.id)))).scalar() or 0
    iid = await stack.routed()

    async def alerted() -> bool:
        r = await stack.client.get("/api/v1/alerts?open=true", headers=h)
        return any(a["incident_id"] == iid for a in r.json())
    await eventually(alerted, 20)
    a_alerts = (await stack.client.get("/api/v1/alerts", headers=stack.auth("officer_a"))).json()
    assert any(a["incident_id"] == iid for a in a_alerts)
    b_alerts = (await stack.client.get("/api/v1/alerts", headers=stack.auth("officer_b"))).json()
    assert not any(a["incident_id"] == iid for a in b_alerts)
    r = await stack.act(iid, "acknowledge", "officer_a")
    assert r.status_code == 200
    r = await stack.act(iid, "arrive", "officer_a")
    r = await stack.act(iid, "close", "officer_a", {"outcome": "resolved", "summary": "xong"})
    assert r.status_code == 200, r.text

    async def resolved() -> bool:
        open_now = (await stack.client.get("/api/v1/alerts?open=true", headers=h)).json()
        done = (await stack.client.get("/api/v1/alerts?open=false", headers=h)).json()
        return (not any(a["incident_id"] == iid for a in open_now)
                and any(a["incident_id"] == iid and not a["open"] for a in done))
    await eventually(resolved)

    stats = (await stack.client.get("/api/v1/stats?group_by=ward", headers=h)).json()
    assert {"from", "to"} <= set(stats)  # the names the query takes
    assert stats["total"]["count"] >= 1
    ward_bucket = next(g for g in stats["groups"]
                       if g["key"] == str(stack.people.places[WARD_A].code))
    assert ward_bucket["to_close"]["n"] >= 1 and ward_bucket["to_close"]["p50_s"] >= 0
    assert 0 <= stats["total"]["sla_compliance"] < 1
    for group in ("category", "hour", "unit"):
        r = await stack.client.get(f"/api/v1/stats?group_by={group}", headers=h)
        assert r.status_code == 200 and r.json()["groups"]
    assert (await stack.client.get("/api/v1/stats?group_by=moon",
                                   headers=h)).status_code == 422
    only_b = (await stack.client.get("/api/v1/stats", headers=stack.auth("officer_b"))).json()
    assert only_b["total"]["count"] < stats["total"]["count"]

    # The event stream replays from an id: officer B gets none of ward A's events.
    r = await stack.client.get(f"/api/v1/events?after={before}&max_events=500&max_seconds=1",
                               headers=h)
    events = _parse_sse(r.text)
    mine = [e for e in events if e["data"].get("incident_id") == iid]
    kinds = {e["event"] for e in mine}
    assert {"incident.new", "incident.changed", "alert.raised"} <= kinds, kinds
    r = await stack.client.get(f"/api/v1/events?after={before}&max_seconds=0.5",
                               headers=stack.auth("officer_b"))
    assert not [e for e in _parse_sse(r.text) if e["data"].get("incident_id") == iid]
    assert (await stack.client.get("/api/v1/events")).status_code == 401


def _parse_sse(text: str) -> list[dict]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event: dict = {}
        for line in block.split("\n"):
            if line.startswith("event:"):
                event["event"] = line[6:].strip()
            elif line.startswith("data:"):
                event["data"] = json.loads(line[5:].strip())
            elif line.startswith("id:"):
                event["id"] = int(line[3:].strip())
        if "data" in event:
            out.append(event)
    return out


async def test_refusals_in_human_words(stack: Stack) -> None:
    """Refusals by the workflow name the action and the state as the console shows them."""
    iid = await stack.routed()
    r = await stack.act(iid, "verify", "operator")
    assert r.status_code == 409
    assert r.json() == {"error": "illegal_transition", "detail": "Không thể thực hiện "
                        "“Xác minh”: vụ việc đang ở trạng thái “Đã chuyển xử lý”"}
    r = await stack.act(iid, "close", "officer_a", {"outcome": "resolved", "summary": "x"})
    assert r.status_code == 409 and r.json()["error"] == "illegal_transition"
    assert r.json()["detail"] == ("Vai trò cán bộ không thể thực hiện “Kết thúc” khi vụ việc "
                                  "đang ở trạng thái “Đã chuyển xử lý”")
    headers = {**stack.auth("officer_a"), "Accept-Language": "en"}
    r = await stack.client.post(f"/api/v1/incidents/{iid}/actions/close", headers=headers,
                                json={"outcome": "resolved", "summary": "x"})
    assert r.json()["detail"] == ("The officer role cannot “Close” while the incident is in "
                                  "state “Routed”")


async def test_silent_sos_is_marked_in_the_list_the_detail_and_the_schema(
        stack: Stack) -> None:
    """A silent SOS is marked where staff read incidents (the console's "SOS im lặng"
    badge reads the same field), taken from the report as accepted."""
    marker = uuid.uuid4().hex[:10]
    quiet = (await stack.submit(description=f"Có người lạ trong nhà {marker}",
                                silent=True))["incident_id"]
    loud = (await stack.submit(description=f"Va chạm xe {marker}"))["incident_id"]
    # Before the projection (an accepted report only) and after it.
    assert (await stack.detail(quiet)).json()["silent"] is True
    for iid in (quiet, loud):
        await stack.wait_projected(iid)
    assert (await stack.detail(quiet)).json()["silent"] is True
    assert (await stack.detail(loud)).json()["silent"] is False
    r = await stack.client.get(f"/api/v1/incidents?q={marker}", headers=stack.auth("operator"))
    assert {i["id"]: i["silent"] for i in r.json()["items"]} == {quiet: True, loud: False}
    r = await stack.act(quiet, "verify", "operator")
    assert r.status_code == 200 and r.json()["silent"] is True
    schemas = (await stack.client.get("/openapi.json")).json()["components"]["schemas"]
    for model in ("IncidentSummary", "IncidentDetail"):
        assert schemas[model]["properties"]["silent"]["type"] == "boolean", model


async def test_a_deadline_nobody_acted_on_is_an_alert(stack: Stack) -> None:
    """An open incident whose deadline passed over a minute ago in the read model, with no
    escalation moving it (its workflow stuck, the worker down), is listed as a "stalled"
    alert for the staff who see the incident, and on the supervisor's page."""
    iid = await stack.routed()
    h = stack.auth("supervisor")
    listed = (await stack.client.get("/api/v1/alerts?open=true", headers=h)).json()
    assert not any(a["incident_id"] == iid for a in listed)  # deadline ahead: nothing
    async with stack.infra.db.session() as s:
        # What a workflow that stopped acting leaves behind: its deadline passes, and
        # nothing moves it on. (Long ago: the list names the oldest first, and other
        # tests' incidents, whose workers have stopped, are stalled too.)
        await s.execute(update(Incident).where(col(Incident.id) == iid).values(
            deadline=datetime(1971, 1, 1, tzinfo=UTC)))
        await s.commit()
    listed = (await stack.client.get("/api/v1/alerts?open=true", headers=h)).json()
    stalled = [a for a in listed if a["incident_id"] == iid]
    assert [a["kind"] for a in stalled] == ["stalled"], stalled
    assert stalled[0]["id"] == f"stalled:{iid}" and stalled[0]["open"]
    assert any(a["incident_id"] == iid for a in
               (await stack.client.get("/api/v1/alerts", headers=stack.auth("officer_a"))).json())
    assert not any(a["incident_id"] == iid for a in
                   (await stack.client.get("/api/v1/alerts",
                                           headers=stack.auth("officer_b"))).json())
    assert not any(a["incident_id"] == iid for a in (await stack.client.get(
        "/api/v1/alerts?open=false", headers=h)).json())
    page = await stack.client.get("/supervisor", headers=h)
    assert page.status_code == 200 and "Hệ thống chưa xử lý hạn" in page.text
    code = (await stack.detail(iid)).json()["tracking_code"]
    assert f'id="stalled-{code}"' in page.text
