"""The one scoping policy (api/scope.py), asserted over every route of the app.

Every GET route is either listed as returning incidents (with how to call it) or as
returning none; a new route fails `test_every_get_route_is_classified` until it is
classified. Each incident route is called as the officer of ward A (who must see the
incident of ward A: the control), the officer of ward B and an officer account without a
unit (who must see neither that incident nor the unrouted one), and the answer is
searched for the incidents' ids and tracking codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlmodel import Session, select
from starlette.routing import Route

from api.auth import make_token
from app import create_app
from core.db import make_sync_engine
from core.settings import Settings
from schema.tables import Alert, Unit, User, utcnow
from tests.api.conftest import WARD_A, Stack

# Routes that return incidents: the path to call ({iid}, {att} filled in) and whether
# a visible incident shows by id/code in the answer (False for aggregates; None: officers
# never see what it returns, 404 even for officer A).
INCIDENT_ROUTES: dict[str, tuple[str, bool | None]] = {
    "/api/v1/incidents": ("/api/v1/incidents?limit=200", True),
    "/api/v1/incidents/export.csv": ("/api/v1/incidents/export.csv", True),
    "/api/v1/incidents/{incident_id}": ("/api/v1/incidents/{iid}", True),
    "/api/v1/incidents/{incident_id}/reporter-location": (
        "/api/v1/incidents/{iid}/reporter-location", False),
    "/api/v1/attachments/{attachment_id}/content": ("/api/v1/attachments/{att}/content", False),
    "/api/v1/attachments/{attachment_id}/{kind}": ("/api/v1/attachments/{att}/thumbnail",
                                                   False),
    "/api/v1/alerts": ("/api/v1/alerts", True),
    "/api/v1/report-groups": ("/api/v1/report-groups", False),
    "/api/v1/report-groups/{group_id}": ("/api/v1/report-groups/{iid}", None),
    "/api/v1/events": ("/api/v1/events?after=0&max_seconds=0.5", True),
    "/api/v1/stats": ("/api/v1/stats?group_by=unit", False),
    "/open311/v2/requests.json": ("/open311/v2/requests.json", True),
    "/console": ("/console", False),
    "/console/incidents": ("/console/incidents", False),
    "/console/incidents/{incident_id}": ("/console/incidents/{iid}", False),
    "/officer": ("/officer", True),
    "/officer/incidents/{incident_id}": ("/officer/incidents/{iid}", False),
    "/supervisor": ("/supervisor", False),
}
# GET routes that return no incident to staff (reference data, the citizen's own report
# by its secret token or id, documents, assets).
NO_INCIDENTS = {
    "/healthz", "/readyz", "/metrics", "/api/v1/auth/me", "/api/v1/units", "/api/v1/wards",
    "/api/v1/wards/locate", "/api/v1/wards/{code}", "/api/v1/track/{tracking_token}",
    "/open311/v2/discovery.json", "/open311/v2/services.json",
    "/open311/v2/services/{service_code}.json",
    "/open311/v2/requests/{service_request_id}.json", "/cap/alerts.atom",
    "/cap/alerts/{alert_id}.xml", "/docs", "/openapi.json", "/static/vendor/{name:path}",
    "/sw.js", "/manifest.webmanifest", "/geo/ward", "/", "/t/{token}", "/offline",
    "/t/{token}/files/{attachment_id}",
    "/login", "/logout", "/console/wards.geojson", "/docs-assets/{name}", "/api/v1/push/key",
    "/open311/v2/{rest:path}",
}


def _paths(routes: list[Any]) -> set[str]:
    """GET paths of `routes`, descending into included routers (FastAPI keeps those as
    wrappers around the original router; ours are included without a prefix)."""
    out: set[str] = set()
    for r in routes:
        included = getattr(r, "original_router", None)
        if included is not None:
            out |= _paths(included.routes)
        elif isinstance(r, APIRoute | Route) and "GET" in (r.methods or ()):
            out.add(r.path)
    return out


def _get_routes(settings: Settings) -> set[str]:
    return _paths(create_app(settings).routes)


def test_every_get_route_is_classified(make_settings: Callable[..., Settings]) -> None:
    routes = _get_routes(make_settings())
    unclassified = routes - set(INCIDENT_ROUTES) - NO_INCIDENTS
    assert not unclassified, f"classify these routes in tests/api/test_scope.py: {unclassified}"
    gone = (set(INCIDENT_ROUTES) | NO_INCIDENTS) - routes
    assert not gone, f"no such routes any more: {gone}"


@dataclass
class World:
    routed: dict[str, str]
    unrouted: dict[str, str]
    attachment: str


def _officer(stack: Stack, unit_code: str | None = None) -> dict[str, str]:
    """Bearer headers of an officer account of the unit with `unit_code` (made once, with
    officer_a's password), or of one without a unit when `unit_code` is None."""
    engine = make_sync_engine(stack.settings.database_url)
    template = stack.people.users["officer_a"]
    username = f"t.officer.{unit_code or 'nounit'}"
    with Session(engine) as s:
        unit_id = (s.exec(select(Unit).where(Unit.code == unit_code)).one().id
                   if unit_code else None)
        user = s.exec(select(User).where(User.username == username)).first()
        if user is None:
            user = User(username=username, password_hash=template.password_hash,
                        role="officer", unit_id=unit_id,
                        full_name=f"Cán bộ {unit_code}" if unit_code else "Cán bộ chưa có đơn vị")
            s.add(user)
            s.commit()
        s.refresh(user)
        s.expunge(user)
    engine.dispose()
    return {"Authorization": f"Bearer {make_token(stack.settings, user)}"}


async def _world(stack: Stack) -> World:
    photo = await stack.upload("photo")  # a real image: its thumbnail can be made
    iid = await stack.routed(WARD_A, attachments=[photo["attachment_id"]])
    accepted = await stack.submit(WARD_A)
    await stack.wait_projected(accepted["incident_id"])
    detail = (await stack.detail(iid)).json()
    world = World(routed={"id": iid, "code": detail["tracking_code"]},
                  unrouted={"id": accepted["incident_id"], "code": accepted["tracking_code"]},
                  attachment=photo["attachment_id"])
    await _overdue(stack, (world.routed, stack.people.places[WARD_A].unit_id),
                   (world.unrouted, None))
    return world


async def _overdue(stack: Stack, *incidents: tuple[dict[str, str], str | None]) -> None:
    """An open SLA alert (level 1, routed, P2 crime) for each (incident {id, code}, unit id
    or None), as the escalation would write it."""
    async with stack.infra.db.session() as s:
        for incident, unit_id in incidents:
            s.add(Alert(id=str(uuid.uuid4()), incident_id=incident["id"],
                        tracking_code=incident["code"], level=1, state="routed",
                        priority=2, category="crime", unit_id=unit_id, overdue_since=utcnow()))
        await s.commit()


def _shows(text: str, incident: dict[str, str]) -> bool:
    return incident["id"] in text or incident["code"] in text


async def test_officers_see_only_their_units_incidents_on_every_route(stack: Stack) -> None:
    world = await _world(stack)
    nobody = _officer(stack)
    viewers = {"officer_b": stack.auth("officer_b"), "no unit": nobody}
    for route, (template, lists) in INCIDENT_ROUTES.items():
        url = template.format(iid=world.routed["id"], att=world.attachment)
        own = await stack.client.get(url, headers=stack.auth("officer_a"))
        assert own.status_code in ((404,) if lists is None else (200, 303)), \
            (route, own.status_code)
        if lists and own.status_code == 200:
            assert _shows(own.text, world.routed), f"{route}: officer A misses the own incident"
        for who, headers in viewers.items():
            r = await stack.client.get(url, headers=headers)
            assert r.status_code in (200, 303, 404), (route, who, r.status_code)
            for incident in (world.routed, world.unrouted):
                assert not _shows(r.text, incident), f"{route} shows {incident} to {who}"
    # Aggregates: the officer without a unit counts nothing, officer B not unit A's.
    for who, headers in viewers.items():
        stats = (await stack.client.get("/api/v1/stats?group_by=unit", headers=headers)).json()
        keys = {g["key"] for g in stats["groups"]}
        assert stack.people.places[WARD_A].unit_id not in keys and None not in keys, who
    empty = (await stack.client.get("/api/v1/stats", headers=nobody)).json()
    assert empty["total"]["count"] == 0


@pytest.mark.parametrize("path", ["/api/v1/incidents/{iid}", "/officer/incidents/{iid}",
                                  "/api/v1/incidents/{iid}/reporter-location",
                                  "/api/v1/attachments/{att}/content",
                                  "/api/v1/attachments/{att}/preview"])
async def test_out_of_scope_details_are_404(stack: Stack, path: str) -> None:
    world = await _world(stack)
    url = path.format(iid=world.routed["id"], att=world.attachment)
    for headers in (stack.auth("officer_b"), _officer(stack)):
        assert (await stack.client.get(url, headers=headers)).status_code == 404


async def test_ward_police_do_not_see_what_a_city_unit_handles_in_their_ward(
        stack: Stack) -> None:
    """Routed to a city unit (Cảnh sát 113), an incident in ward A is that unit's: the ward
    police of ward A see it on no route, the 113 officer does; anonymous callers and the
    citizen's tracking token as a bearer token list nothing."""
    accepted = await stack.submit(WARD_A)
    iid = accepted["incident_id"]
    await stack.wait_projected(iid)
    for action, body in (("classify", {"category": "crime", "priority": 2}),
                         ("route", {"unit_id": "cs113"})):
        r = await stack.act(iid, action, "operator", body)
        assert r.status_code == 200, r.text
    incident = {"id": iid, "code": accepted["tracking_code"]}
    handler = _officer(stack, "cs113")
    await _overdue(stack, (incident, (await stack.detail(iid)).json()["unit"]["id"]))
    for route, (template, lists) in INCIDENT_ROUTES.items():
        if "{att}" in template or lists is None:  # no attachment here; officers never see
            continue
        url = template.format(iid=iid)
        own = await stack.client.get(url, headers=handler)
        assert own.status_code in (200, 303), (route, own.status_code)
        if lists and own.status_code == 200:
            assert _shows(own.text, incident), f"{route}: the 113 officer misses it"
        ward = await stack.client.get(url, headers=stack.auth("officer_a"))
        assert ward.status_code in (200, 303, 404), (route, ward.status_code)
        assert not _shows(ward.text, incident), f"{route} shows it to the ward police"
        for headers in ({}, {"Authorization": f"Bearer {accepted['tracking_token']}"}):
            stranger = await stack.client.get(url, headers=headers)
            assert stranger.status_code in (303, 401), (route, stranger.status_code)
            assert not _shows(stranger.text, incident), f"{route} shows it to a stranger"
