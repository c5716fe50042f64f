"""Reporter abuse without blocking emergencies (issue #9, item 8): per device, phone and
address limits that only mark a report (schema/abuse.py), flood groups, and rejecting a
group in one action through each incident's workflow.

Every test sends from addresses, devices and phones of its own, so that the rest of the
suite (which sends from 127.0.0.1) never counts towards its figures."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlmodel import col

from api.abuse import GROUP_EVENT, _flag
from core.db import Database
from core.serving import uvicorn_options
from schema.abuse import DEFAULT_FLOOD, DEFAULT_LIMITS, SourceKind, parse_flood, parse_rates
from schema.tables import FloodGroup, ReportFlag, ReportSource, StaffEvent
from tests.api.conftest import Stack, eventually
from tests.conftest import FLOOD_DEFAULTS

ADDRESS_LIMIT = parse_rates(DEFAULT_LIMITS[SourceKind.ADDRESS])[0]  # 10 in 10 minutes
DEVICE_LIMIT = parse_rates(DEFAULT_LIMITS[SourceKind.DEVICE])[0]  # 5 in 10 minutes
PHONE_LIMIT = parse_rates(DEFAULT_LIMITS[SourceKind.PHONE])[0]
ADDRESS_FLOOD = parse_flood(DEFAULT_FLOOD[SourceKind.ADDRESS])


@pytest.fixture
async def stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    """The stack with the production flood figures (the suite's default turns them off)."""
    return await make_stack(**FLOOD_DEFAULTS)


def fresh_address() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def fresh_phone() -> str:
    return "09" + "".join(random.choice("0123456789") for _ in range(8))


def client_from(stack: Stack, address: str) -> httpx.AsyncClient:
    """Requests that come from `address` as the peer."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app,
                                                           client=(address, 40000)),
                             base_url="http://testserver", timeout=60)


def anonymous(stack: Stack, **overrides: Any) -> dict[str, Any]:
    """A report with no phone and no device (only the address counts) unless given."""
    body = stack.report_body(**overrides)
    if "reporter" not in overrides:
        body.pop("reporter")
    return body


async def flags(stack: Stack, ids: list[str]) -> dict[str, ReportFlag]:
    async with stack.infra.db.session() as s:
        rows = (await s.execute(select(ReportFlag).where(
            col(ReportFlag.report_id).in_(ids)))).scalars().all()
    return {r.report_id: r for r in rows}


async def flood(stack: Stack, n: int = 25) -> tuple[str, list[str]]:
    """`n` reports from one new address within a minute (one after the other, as a
    script would); returns the address and the incident ids in order."""
    address = fresh_address()
    ids = []
    async with client_from(stack, address) as client:
        for i in range(n):
            r = await client.post("/api/v1/reports",
                                  json=anonymous(stack, description=f"Spam số {i}"))
            assert r.status_code == 202, r.text  # never refused
            ids.append(r.json()["incident_id"])
    return address, ids


async def test_flood_from_one_address_is_accepted_marked_and_grouped(stack: Stack) -> None:
    _, ids = await flood(stack)
    for iid in ids:  # every one reaches its workflow and the read model
        await stack.wait_projected(iid)
        assert (await stack.detail(iid)).json()["state"] == "received"
    marks = await flags(stack, ids)
    # Marked from the limit onward, with which limit and how many.
    for n, iid in enumerate(ids, start=1):
        flag = marks[iid]  # every report of the burst is in the group
        if n <= ADDRESS_LIMIT.count:
            assert not flag.suspected_spam, n
        else:
            assert flag.suspected_spam, n
            assert {"source": "address", "limit": ADDRESS_LIMIT.count,
                    "window_s": ADDRESS_LIMIT.window_s, "count": n} in flag.reasons
    groups = {f.flood_group for f in marks.values()}
    assert len(groups) == 1 and None not in groups
    group_id = groups.pop()
    # The API and the staff event stream know the group.
    r = await stack.client.get("/api/v1/report-groups", headers=stack.auth("operator"))
    assert r.status_code == 200, r.text
    mine = [g for g in r.json() if g["id"] == group_id]
    assert len(mine) == 1
    g = mine[0]
    assert (g["size"], g["pending"], g["source"]) == (25, 25, "address")
    assert g["span_s"] < 60 and [m["incident_id"] for m in g["members"]] == ids
    async with stack.infra.db.session() as s:
        events = (await s.execute(select(StaffEvent).where(
            col(StaffEvent.kind) == GROUP_EVENT))).scalars().all()
    assert any(e.payload.get("group_id") == group_id for e in events)


async def test_group_rejection_in_one_action_reports_partial_failures(stack: Stack) -> None:
    _, ids = await flood(stack)
    for iid in ids:
        await stack.wait_projected(iid)
    group_id = (await flags(stack, ids))[ids[0]].flood_group
    # Somebody verified one of them meanwhile: it must not be rejected with the group.
    assert (await stack.act(ids[0], "verify", "operator")).status_code == 200
    await eventually(lambda: _state_is(stack, ids[0], "verified"))
    shown = (await stack.client.get(f"/api/v1/report-groups/{group_id}",
                                    headers=stack.auth("operator"))).json()
    # The console sends the versions it showed; the last report "arrived after it looked".
    versions = {m["incident_id"]: m["version"] for m in shown["members"]
                if m["incident_id"] != ids[-1]}
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                                json={"reason": "Spam từ một địa chỉ", "versions": versions},
                                headers=stack.auth("operator"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert sorted(o["incident_id"] for o in out["rejected"]) == sorted(ids[1:-1])
    failed = {o["incident_id"]: o for o in out["failed"]}
    assert set(failed) == {ids[0], ids[-1]}  # reported, not silently skipped
    assert failed[ids[0]]["error"] == "not_pending" and failed[ids[0]]["state"] == "verified"
    assert failed[ids[-1]]["error"] == "not_shown"
    assert out["group"]["resolved"] is None and out["group"]["pending"] == 1
    # Again, without versions: the one left goes too, and the group is done.
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                                json={"reason": "Spam từ một địa chỉ"},
                                headers=stack.auth("supervisor"))
    out = r.json()
    assert [o["incident_id"] for o in out["rejected"]] == [ids[-1]]
    assert out["group"]["resolved"] == "rejected" and out["group"]["pending"] == 0
    # Each workflow says rejected, and each timeline shows who rejected it and why.
    for iid in ids[1:]:
        d = (await stack.detail(iid)).json()
        assert d["state"] == "rejected", iid
        last = [e for e in d["timeline"] if e["action"] == "reject"]
        assert len(last) == 1 and last[0]["data"]["reason"] == "Spam từ một địa chỉ"
    assert (await stack.detail(ids[0])).json()["state"] == "verified"
    # A resolved group is no longer listed.
    listed = (await stack.client.get("/api/v1/report-groups",
                                     headers=stack.auth("operator"))).json()
    assert group_id not in {g["id"] for g in listed}


async def _state_is(stack: Stack, iid: str, state: str) -> bool:
    return (await stack.detail(iid)).json()["state"] == state


async def test_not_spam_clears_the_marks(stack: Stack) -> None:
    _, ids = await flood(stack, 12)
    group_id = (await flags(stack, ids))[ids[0]].flood_group
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/not-spam",
                                headers=stack.auth("operator"))
    assert r.status_code == 200, r.text
    assert r.json()["resolved"] == "not_spam"
    assert all(not m["suspected_spam"] for m in r.json()["members"])
    marks = await flags(stack, ids)
    assert all(f.cleared_by == "t.operator" for f in marks.values())


async def test_only_command_staff_act_on_groups(stack: Stack) -> None:
    _, ids = await flood(stack, ADDRESS_FLOOD.count if ADDRESS_FLOOD else 5)
    group_id = (await flags(stack, ids))[ids[0]].flood_group
    # An officer sees no group (api/scope.py), as with incidents out of scope.
    r = await stack.client.get("/api/v1/report-groups", headers=stack.auth("officer_a"))
    assert r.status_code == 200 and r.json() == []
    r = await stack.client.get(f"/api/v1/report-groups/{group_id}",
                               headers=stack.auth("officer_a"))
    assert r.status_code == 404
    for who in ("officer_a", "admin"):
        r = await stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                                    json={"reason": "x"}, headers=stack.auth(who))
        assert r.status_code == 403, who
        r = await stack.client.post(f"/api/v1/report-groups/{group_id}/not-spam",
                                    headers=stack.auth(who))
        assert r.status_code == 403, who
    r = await stack.client.post("/api/v1/report-groups/nope/reject", json={"reason": "x"},
                                headers=stack.auth("operator"))
    assert r.status_code == 404
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                                json={"reason": ""}, headers=stack.auth("operator"))
    assert r.status_code == 422


async def test_device_limit_across_addresses(stack: Stack) -> None:
    device = f"dev-{uuid.uuid4()}"
    ids = []
    for _ in range(DEVICE_LIMIT.count + 2):  # each from another address (a moving phone)
        async with client_from(stack, fresh_address()) as client:
            r = await client.post("/api/v1/reports", json=anonymous(stack, device_id=device))
            assert r.status_code == 202, r.text
            ids.append(r.json()["incident_id"])
    marks = await flags(stack, ids)
    for n, iid in enumerate(ids, start=1):
        flag = marks[iid]
        assert flag.suspected_spam is (n > DEVICE_LIMIT.count), n
        if flag.suspected_spam:
            assert [x["source"] for x in flag.reasons] == ["device"]
    assert len({f.flood_group for f in marks.values()}) == 1  # 3 within 60 s: one group


async def test_phone_limit(stack: Stack) -> None:
    phone = fresh_phone()
    ids = []
    for _ in range(PHONE_LIMIT.count + 1):
        async with client_from(stack, fresh_address()) as client:
            body = stack.report_body(reporter={"name": "A", "phone": phone})
            r = await client.post("/api/v1/reports", json=body)
            assert r.status_code == 202, r.text
            ids.append(r.json()["incident_id"])
    marks = await flags(stack, ids)
    last = marks[ids[-1]]
    assert last.suspected_spam and last.reasons[0]["source"] == "phone"
    assert last.reasons[0]["count"] == PHONE_LIMIT.count + 1
    assert not marks[ids[PHONE_LIMIT.count - 1]].suspected_spam


async def test_different_addresses_are_not_grouped(stack: Stack) -> None:
    ids = []
    for _ in range(12):
        async with client_from(stack, fresh_address()) as client:
            r = await client.post("/api/v1/reports", json=anonymous(stack))
            assert r.status_code == 202
            ids.append(r.json()["incident_id"])
    assert await flags(stack, ids) == {}


async def test_every_intake_counts_the_client_address(stack: Stack) -> None:
    """JSON, the no-JS form and Open311 all count under the same address (and device)."""
    address = fresh_address()
    device = f"dev-{uuid.uuid4()}"
    place = stack.people.places["ben_thanh"]
    async with client_from(stack, address) as client:
        r = await client.post("/api/v1/reports", json=anonymous(stack, device_id=device))
        assert r.status_code == 202
        r = await client.post("/open311/v2/requests.json", data={
            "service_code": "crime", "lat": place.lat, "long": place.lon,
            "description": "Qua Open311", "device_id": device})
        assert r.status_code == 201, r.text
        r = await client.post("/report", data={
            "report_id": str(uuid.uuid4()), "category": "crime", "description": "Không JS",
            "lat": place.lat, "lon": place.lon, "address": "Chợ Bến Thành"},
            follow_redirects=False)
        assert r.status_code == 303, r.text
    async with stack.infra.db.session() as s:
        rows = (await s.execute(select(ReportSource).where(
            col(ReportSource.key).in_([address, device])))).scalars().all()
    assert sorted((r.kind, r.key) for r in rows) == sorted(
        [("address", address)] * 3 + [("device", device)] * 2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_forged_forwarded_for_does_not_evade(stack: Stack) -> None:
    """Served as in production with no proxy listed: a client that makes up a new
    X-Forwarded-For for each report is still counted under its own address."""
    options = uvicorn_options(stack.settings) | {"host": "127.0.0.1", "port": _free_port()}
    assert options["proxy_headers"] is False
    server = uvicorn.Server(uvicorn.Config(stack.app, lifespan="off", log_level="warning",
                                           **options))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    me = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    ids = []
    try:
        transport = httpx.AsyncHTTPTransport(local_address=me)
        async with httpx.AsyncClient(transport=transport, timeout=60,
                                     base_url=f"http://127.0.0.1:{options['port']}") as c:
            for i in range(ADDRESS_LIMIT.count + 2):
                r = await c.post("/api/v1/reports", json=anonymous(stack),
                                 headers={"X-Forwarded-For": f"198.51.100.{i + 1}"})
                assert r.status_code == 202, r.text
                ids.append(r.json()["incident_id"])
    finally:
        server.should_exit = True
        await task
    marks = await flags(stack, ids)
    assert len(marks) == len(ids) and len({f.flood_group for f in marks.values()}) == 1
    assert marks[ids[-1]].suspected_spam
    async with stack.infra.db.session() as s:
        keys = set((await s.execute(select(col(ReportSource.key)).where(
            col(ReportSource.report_id).in_(ids), col(ReportSource.kind) == "address")))
            .scalars().all())
        group = await s.get(FloodGroup, marks[ids[0]].flood_group)
    assert keys == {me} and group is not None and group.key == me


async def test_concurrent_burst_is_counted_once_each(stack: Stack) -> None:
    """Reports of one burst sent at once (each on its own database connection, as from
    several API processes) neither slip under the limit together nor open two groups."""
    address = fresh_address()
    n = ADDRESS_LIMIT.count + 3
    async with client_from(stack, address) as client:
        answers = await asyncio.gather(*(client.post("/api/v1/reports", json=anonymous(stack))
                                         for _ in range(n)))
    assert all(r.status_code == 202 for r in answers)
    marks = await flags(stack, [r.json()["incident_id"] for r in answers])
    counts = sorted(x["count"] for f in marks.values() for x in f.reasons)
    # Each counts the reports stored before it: those past the limit are marked (one may
    # count one less when it looked while an earlier one was still being stored).
    assert n - ADDRESS_LIMIT.count - 1 <= len(counts) <= n - ADDRESS_LIMIT.count, counts
    assert all(ADDRESS_LIMIT.count < c <= n for c in counts), counts
    assert len(marks) == n and len({f.flood_group for f in marks.values()}) == 1


async def test_one_report_flagged_from_many_tasks_at_once(pg_db: Database) -> None:
    """A report's own marking and other reports' group steps create its flag at the same
    moment (issue #19: 786 primary-key collisions in a burst, each losing that
    transaction's marks): every one gets the single flag, none fails."""
    report_id = str(uuid.uuid4())
    at = datetime.now(UTC)

    async def mark(n: int) -> None:
        async with pg_db.session() as s:
            flag = await _flag(s, report_id, at)
            if n % 2:
                flag.suspected_spam = True
            await s.commit()

    outcomes = await asyncio.gather(*(mark(n) for n in range(24)), return_exceptions=True)
    assert [o for o in outcomes if o is not None] == []
    async with pg_db.session() as s:
        rows = (await s.execute(select(ReportFlag).where(
            col(ReportFlag.report_id) == report_id))).scalars().all()
    assert len(rows) == 1 and rows[0].suspected_spam


async def test_marks_on_sqlite(make_stack: Callable[..., Awaitable[Stack]],
                               sqlite_url: str) -> None:
    stack = await make_stack(with_worker=False, DATABASE_URL=sqlite_url, **FLOOD_DEFAULTS)
    device = f"dev-{uuid.uuid4()}"
    ids = []
    for _ in range(DEVICE_LIMIT.count + 1):
        r = await stack.client.post("/api/v1/reports", json=anonymous(stack, device_id=device))
        assert r.status_code == 202
        ids.append(r.json()["incident_id"])
    marks = await flags(stack, ids)
    assert marks[ids[-1]].suspected_spam and len(marks) == len(ids)


async def _group_of_pending(stack: Stack, n: int = 8) -> tuple[str, list[str]]:
    _, ids = await flood(stack, n)
    for iid in ids:
        await stack.wait_projected(iid)
    return str((await flags(stack, ids))[ids[0]].flood_group), ids


async def test_reject_and_not_spam_at_once_one_wins(stack: Stack) -> None:
    """The tester's race: both answered 200, the group said not_spam while every report
    was rejected. Resolving is claimed first: one wins, the other gets 409 naming it."""
    group_id, ids = await _group_of_pending(stack)
    reject, clear = await asyncio.gather(
        stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                          json={"reason": "Spam"}, headers=stack.auth("operator")),
        stack.client.post(f"/api/v1/report-groups/{group_id}/not-spam",
                          headers=stack.auth("supervisor")))
    assert sorted((reject.status_code, clear.status_code)) == [200, 409], (reject.text,
                                                                           clear.text)
    group = (await stack.client.get(f"/api/v1/report-groups/{group_id}",
                                    headers=stack.auth("operator"))).json()
    states = {(await stack.detail(iid)).json()["state"] for iid in ids}
    loser = clear if reject.status_code == 200 else reject
    assert loser.json()["error"] == "group_resolved"
    if reject.status_code == 200:
        assert group["resolved"] == "rejected" and group["resolved_by"] == "t.operator"
        assert states == {"rejected"}
        assert "từ chối bởi t.operator lúc" in loser.json()["detail"]
    else:
        assert group["resolved"] == "not_spam" and group["resolved_by"] == "t.supervisor"
        assert states == {"received"}
        assert "không phải spam bởi t.supervisor lúc" in loser.json()["detail"]


async def test_two_rejects_at_once_one_wins_and_outcomes_are_true(stack: Stack) -> None:
    group_id, ids = await _group_of_pending(stack)
    answers = await asyncio.gather(*(
        stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                          json={"reason": f"Spam ({who})"}, headers=stack.auth(who))
        for who in ("operator", "supervisor")))
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    won = next(r for r in answers if r.status_code == 200).json()
    who = won["group"]["resolved_by"]
    assert len(won["rejected"]) == len(ids) and not won["failed"]
    for iid in ids:  # every timeline names the one who won, once
        rejects = [e for e in (await stack.detail(iid)).json()["timeline"]
                   if e["action"] == "reject"]
        assert [e["actor"]["username"] for e in rejects] == [who], rejects


async def test_not_spam_after_reject_is_a_conflict_in_both_languages(stack: Stack) -> None:
    group_id, ids = await _group_of_pending(stack)
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                                json={"reason": "Spam"}, headers=stack.auth("operator"))
    assert r.status_code == 200 and r.json()["group"]["resolved"] == "rejected"
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/not-spam",
                                headers=stack.auth("supervisor"))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "group_resolved" and body["resolved_by"] == "t.operator"
    assert body["detail"].startswith("Nhóm đã được xử lý: từ chối bởi t.operator lúc ")
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/not-spam",
                                headers={**stack.auth("supervisor"), "Accept-Language": "en"})
    assert r.json()["detail"].startswith(
        "The group was already resolved: rejected by t.operator at ")
    # A member that somebody else rejected is reported as such, not as this caller's.
    r = await stack.client.post(f"/api/v1/report-groups/{group_id}/reject",
                                json={"reason": "Spam"}, headers=stack.auth("supervisor"))
    assert r.status_code == 409
    group = (await stack.client.get(f"/api/v1/report-groups/{group_id}",
                                    headers=stack.auth("operator"))).json()
    assert group["resolved"] == "rejected" and group["resolved_by"] == "t.operator"
