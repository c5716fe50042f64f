"""Live location from the tracking page: `POST /api/v1/track/{token}/location` checks,
rate limit, the trail kept, 409 once closed, and who among staff sees it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from schema.tables import StaffEvent
from tests.api.conftest import WARD_A, Stack


def fix(stack: Stack, ward: str = WARD_A, **overrides: Any) -> dict[str, Any]:
    place = stack.people.places[ward]
    body: dict[str, Any] = {"lat": place.lat + 0.001, "lon": place.lon - 0.001,
                            "accuracy_m": 12.5, "at": datetime.now(UTC).isoformat()}
    body.update(overrides)
    return body


async def post(stack: Stack, token: str, body: dict[str, Any], lang: str = "vi") -> Any:
    return await stack.client.post(f"/api/v1/track/{token}/location", json=body,
                                   headers={"Accept-Language": lang})


async def test_position_reaches_the_incident_and_its_staff(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(CANHBAO_LOCATION_MIN_INTERVAL_S=0, CANHBAO_LOCATION_TRAIL=3)
    accepted = await stack.submit()
    token = accepted["tracking_token"]
    iid = await stack.routed()  # another incident, routed to ward A, to check scoping below
    r = await post(stack, token, fix(stack))
    assert r.status_code == 200, r.text
    assert r.json()["interval_s"] == 30
    await stack.wait_projected(accepted["incident_id"])
    for i in range(4):
        assert (await post(stack, token, fix(stack, accuracy_m=i))).status_code == 200
    d = (await stack.detail(accepted["incident_id"])).json()
    loc = d["reporter_location"]
    assert loc["accuracy_m"] == 3 and len(loc["trail"]) == 3  # newest first, trail of 3
    assert [p["accuracy_m"] for p in loc["trail"]] == [3, 2, 1]
    r = await stack.client.get(f"/api/v1/incidents/{accepted['incident_id']}/reporter-location",
                               headers=stack.auth("operator"))
    assert r.status_code == 200 and r.json()["lat"] == loc["lat"]
    # Nobody shared on the other incident.
    r = await stack.client.get(f"/api/v1/incidents/{iid}/reporter-location",
                               headers=stack.auth("operator"))
    assert r.status_code == 200 and r.json() is None
    assert (await stack.detail(iid)).json()["reporter_location"] is None


async def test_only_staff_who_see_the_incident_see_the_location(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack()
    accepted = await stack.submit()
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    await stack.wait_projected(iid)
    for action, body in (("classify", {"category": "crime", "priority": 2}),
                         ("route", {"ward_code": stack.people.places[WARD_A].code})):
        assert (await stack.act(iid, action, "operator", body)).status_code == 200
    assert (await post(stack, token, fix(stack))).status_code == 200
    url = f"/api/v1/incidents/{iid}/reporter-location"
    for who, status in (("officer_a", 200), ("supervisor", 200), ("officer_b", 404)):
        r = await stack.client.get(url, headers=stack.auth(who))
        assert r.status_code == status, (who, r.text)
        assert (await stack.detail(iid, who)).status_code == status
    r = await stack.client.get(url)
    assert r.status_code == 401
    # The live feed's event carries the incident's unit, so api/scope.py keeps it from
    # other units' officers like every staff event.
    async with stack.infra.db.session() as s:
        ev = (await s.execute(select(StaffEvent).where(
            col(StaffEvent.incident_id) == iid, col(StaffEvent.kind) == "reporter.location"))
        ).scalar_one()
    assert ev.unit_id == stack.people.places[WARD_A].unit_id
    seen = {}
    for who in ("officer_a", "officer_b"):
        r = await stack.client.get("/api/v1/events", headers=stack.auth(who),
                                   params={"after": ev.id - 1, "max_seconds": 1.5})
        seen[who] = [json.loads(line[5:]) for line in r.text.splitlines()
                     if line.startswith("data:")]
    assert any(e["kind"] == "reporter.location" and e["incident_id"] == iid
               for e in seen["officer_a"])
    assert not any(e["incident_id"] == iid for e in seen["officer_b"])


async def test_rate_limit(make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(with_worker=False)
    token = (await stack.submit())["tracking_token"]
    assert (await post(stack, token, fix(stack))).status_code == 200
    r = await post(stack, token, fix(stack), "en")
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 10
    assert "too fast" in r.json()["detail"]
    vi = await post(stack, token, fix(stack))
    assert vi.status_code == 429 and "giây" in vi.json()["detail"]


async def test_bad_positions_are_422(make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(with_worker=False)
    token = (await stack.submit())["tracking_token"]
    now = datetime.now(UTC)
    cases = [
        (fix(stack, lat=91), "lat"), (fix(stack, lat=-90.5), "lat"),
        (fix(stack, lon=180.01), "lon"), (fix(stack, accuracy_m=-1), "accuracy_m"),
        (fix(stack, at=(now + timedelta(minutes=10)).isoformat()), "at"),
        (fix(stack, at=(now - timedelta(hours=1)).isoformat()), "at"),
        (fix(stack, at="yesterday"), "at"), ({"lat": 10.7}, "lon"),
        ({**fix(stack), "speed": 3}, "speed"),
    ]
    for body, field in cases:
        r = await post(stack, token, body, "en")
        assert r.status_code == 422, (body, r.text)
        assert field in [f["field"] for f in r.json()["fields"]], r.text
        vi = await post(stack, token, body)
        assert vi.json()["detail"] == "Dữ liệu không hợp lệ"
    r = await stack.client.post("/api/v1/track/x/location", content=b'{"lat": NaN}',
                                headers={"Content-Type": "application/json"})
    assert r.status_code in (404, 422)
    r = await post(stack, "no-such-token", fix(stack))
    assert r.status_code == 404
    # A phone clock a little ahead is fine.
    ahead = fix(stack, at=(now + timedelta(seconds=60)).isoformat())
    assert (await post(stack, token, ahead)).status_code == 200


async def test_a_time_must_carry_its_zone_and_be_near_now(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    """The contract's times are ISO 8601 with a time zone: a phone time without one is
    refused (it used to be read as UTC, 7 hours off in Vietnam); a time far ahead or far
    back is refused too, whatever its form; the same moment with its offset is taken."""
    stack = await make_stack(with_worker=False, CANHBAO_LOCATION_MIN_INTERVAL_S=0)
    token = (await stack.submit())["tracking_token"]
    now = datetime.now(UTC)
    naive = now.replace(tzinfo=None).isoformat()  # this moment, but without its zone
    r = await post(stack, token, fix(stack, at=naive))
    assert r.status_code == 422, r.text
    assert r.json()["fields"] == [{"field": "at", "type": "time_zone", "message":
                                   "Thời điểm phải có múi giờ, ví dụ 2026-11-29T10:00:00+07:00"}]
    en = await post(stack, token, fix(stack, at=naive), "en")
    assert en.status_code == 422
    assert en.json()["fields"][0]["message"] == \
        "the time must have a time zone, e.g. 2026-11-29T10:00:00+07:00"
    for far in ("3000-01-01T00:00:00+07:00", "9999-12-31T23:59:59-12:00",
                "0001-01-01T00:00:00+14:00", "1971-01-01T00:00:00Z",
                (now + timedelta(days=2)).isoformat()):
        r = await post(stack, token, fix(stack, at=far))
        assert r.status_code == 422, (far, r.text)
        assert r.json()["fields"][0]["field"] == "at", r.text
    hcmc = timezone(timedelta(hours=7))
    for same in (now.astimezone(hcmc).isoformat(), now.isoformat().replace("+00:00", "Z")):
        r = await post(stack, token, fix(stack, at=same))
        assert r.status_code == 200, (same, r.text)


async def test_closed_report_stops_sharing(make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(CANHBAO_LOCATION_MIN_INTERVAL_S=0)
    accepted = await stack.submit()
    token = accepted["tracking_token"]
    await stack.wait_projected(accepted["incident_id"])
    assert (await post(stack, token, fix(stack))).status_code == 200
    r = await stack.client.post(f"/api/v1/track/{token}/cancel", json={})
    assert r.status_code == 200, r.text
    r = await post(stack, token, fix(stack), "en")
    assert r.status_code == 409 and "closed" in r.json()["detail"]
    # What was shared before stays readable for staff.
    d = (await stack.detail(accepted["incident_id"])).json()
    assert d["reporter_location"] is not None
