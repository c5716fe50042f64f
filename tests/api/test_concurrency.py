"""Concurrency made visible (issue #7): the detail's ETag is the case version, an action
with a stale If-Match is 412 naming what changed, by whom and when; an action that would
change nothing is 409 saying the same; an officer whose incident left the unit gets 409,
not 404."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.conftest import WARD_A, WARD_B, Stack


async def act(stack: Stack, iid: str, action: str, who: str, body: dict,
              if_match: str | None = None) -> httpx.Response:
    headers = stack.auth(who)
    if if_match is not None:
        headers["If-Match"] = if_match
    return await stack.client.post(f"/api/v1/incidents/{iid}/actions/{action}", json=body,
                                   headers=headers)


async def test_stale_if_match_is_412_and_names_the_change(stack: Stack) -> None:
    accepted = await stack.submit(WARD_A)
    iid = accepted["incident_id"]
    await stack.wait_projected(iid)
    r = await stack.act(iid, "verify", "operator")
    assert r.status_code == 200 and r.headers["etag"] == '"v1"'
    seen = (await stack.detail(iid)).headers["etag"]
    assert seen == '"v1"' and (await stack.detail(iid)).json()["version"] == 1
    ward_a, ward_b = stack.people.places[WARD_A], stack.people.places[WARD_B]
    # Operator and supervisor both look at v1 and route to different wards.
    first = await act(stack, iid, "route", "supervisor", {"ward_code": ward_a.code}, seen)
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"v2"'
    second = await act(stack, iid, "route", "operator", {"ward_code": ward_b.code}, seen)
    assert second.status_code == 412, second.text
    body = second.json()
    assert body["error"] == "stale" and body["changed_by"] == "t.supervisor"
    assert body["changed_at"] and body["version"] == 2
    assert "t.supervisor" in body["detail"] and ward_a.name in body["detail"]
    assert "lúc" in body["detail"]
    en = await stack.client.post(
        f"/api/v1/incidents/{iid}/actions/route", json={"ward_code": ward_b.code},
        headers={**stack.auth("operator"), "If-Match": seen, "Accept-Language": "en"})
    assert en.status_code == 412 and "changed" in en.json()["detail"]
    assert (await stack.detail(iid)).json()["unit"]["id"] == ward_a.unit_id
    # With the current version it goes through; a malformed one is a clear 422.
    ok = await act(stack, iid, "route", "operator", {"ward_code": ward_b.code}, '"v2"')
    assert ok.status_code == 200, ok.text
    bad = await act(stack, iid, "note", "operator", {"text": "x"}, "v2")
    assert bad.status_code == 422 and "If-Match" in bad.json()["detail"]


async def test_routing_again_to_the_same_unit_is_409_with_who_and_when(stack: Stack) -> None:
    """Four operators route to the same ward at once: one 200, three 409 that say it is
    already that ward's (none silently 'wins')."""
    accepted = await stack.submit(WARD_A)
    iid = accepted["incident_id"]
    await stack.wait_projected(iid)
    assert (await stack.act(iid, "verify", "operator")).status_code == 200
    ward_a = stack.people.places[WARD_A]
    answers = await asyncio.gather(*(
        stack.act(iid, "route", "operator", {"ward_code": ward_a.code}) for _ in range(4)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409, 409, 409], [r.text for r in answers]
    refused = [r.json() for r in answers if r.status_code == 409]
    assert all(r["error"] == "no_change" for r in refused)
    assert ward_a.name in refused[0]["detail"] and "t.operator" in refused[0]["detail"]


async def test_an_officer_whose_incident_moved_gets_409_not_404(stack: Stack) -> None:
    iid = await stack.routed(WARD_A)
    r = await stack.act(iid, "reassign", "supervisor",
                        {"unit_id": stack.people.places[WARD_B].unit_id, "reason": "gần hơn"})
    assert r.status_code == 200, r.text
    moved = await stack.act(iid, "acknowledge", "officer_a")
    assert moved.status_code == 409 and moved.json()["error"] == "moved"
    assert "đơn vị khác" in moved.json()["detail"]
    # The detail stays out of reach; an incident never theirs stays 404.
    assert (await stack.detail(iid, "officer_a")).status_code == 404
    never = await stack.routed(WARD_B)
    assert (await stack.act(never, "acknowledge", "officer_a")).status_code == 404


async def test_opposite_merges_right_after_the_reports_arrive(stack: Stack) -> None:
    """Two reports merged into each other the moment they are accepted (before the read
    model has them): still exactly one 200 and one 409."""
    x, y = await stack.submit(WARD_A), await stack.submit(WARD_A)
    xid, yid = x["incident_id"], y["incident_id"]
    answers = await asyncio.gather(
        stack.act(xid, "merge", "operator", {"into_incident_id": yid}),
        stack.act(yid, "merge", "supervisor", {"into_incident_id": xid}))
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
