"""The embedded default: the API's own queries on SQLite (intake, list, search, cursor)."""

from __future__ import annotations

from datetime import timedelta

from schema.search import search_document
from schema.tables import Incident, User, utcnow
from tests.api.conftest import Stack


async def test_intake_and_list_on_sqlite(make_stack, sqlite_url: str) -> None:
    stack: Stack = await make_stack(with_worker=False, DATABASE_URL=sqlite_url)
    first = await stack.submit()
    again = await stack.client.post("/api/v1/reports", json={
        **stack.report_body(), "report_id": first["incident_id"]})
    assert again.json() == first
    now = utcnow()
    operator = stack.people.users["operator"]
    async with stack.infra.db.session() as s:
        if await s.get(User, operator.id) is None:
            s.add(User(id=operator.id, username=operator.username, role="operator",
                       password_hash=operator.password_hash))
        for i in range(5):
            s.add(Incident(id=f"00000000-0000-0000-0000-00000000000{i}",
                           tracking_code=f"SQLITE{i:02d}", state="received", category="crime",
                           priority=2, description=f"Trộm xe máy lần {i}",
                           search_text=search_document(f"Trộm xe máy lần {i}"), lat=10.77,
                           lon=106.7, created_at=now - timedelta(minutes=i),
                           updated_at=now))
        await s.commit()
    h = stack.auth("operator")
    page = (await stack.client.get("/api/v1/incidents?q=trộm&limit=2", headers=h)).json()
    seen = [i["tracking_code"] for i in page["items"]]
    while page["next_cursor"]:
        page = (await stack.client.get(
            f"/api/v1/incidents?q=trộm&limit=2&cursor={page['next_cursor']}", headers=h)).json()
        seen += [i["tracking_code"] for i in page["items"]]
    # (other tests' incidents about theft share this database)
    assert [c for c in seen if c.startswith("SQLITE")] == [f"SQLITE{i:02d}" for i in range(5)]
    r = await stack.client.get("/api/v1/incidents?q=sqlite03", headers=h)
    assert [i["tracking_code"] for i in r.json()["items"]] == ["SQLITE03"]
    r = await stack.client.get("/api/v1/stats?group_by=hour", headers=h)
    assert r.json()["total"]["count"] >= 5
    r = await stack.client.get("/api/v1/incidents/export.csv", headers=h)
    assert r.text.count("SQLITE") == 5
    # SQLite's lower() folds ASCII only: the folded column finds upper case and toneless.
    for q in ("TRỘM XE", "trom xe may", "Trộm"):
        r = await stack.client.get("/api/v1/incidents", params={"q": q}, headers=h)
        assert len([i for i in r.json()["items"] if i["tracking_code"].startswith("SQLITE")]) == 5
        r = await stack.client.get("/api/v1/incidents/export.csv", params={"q": q}, headers=h)
        assert r.text.count("SQLITE") == 5, q


async def test_sla_overrides_travel_with_the_report(make_stack, sqlite_url: str) -> None:
    """CANHBAO_SLA is fixed into the workflow input at intake, like the scale."""
    from schema.tables import Report

    stack: Stack = await make_stack(with_worker=False, DATABASE_URL=sqlite_url,
                                    CANHBAO_SLA={1: {"routed": 90}}, CANHBAO_SLA_SCALE=0.5)
    accepted = await stack.submit()
    async with stack.infra.db.session() as s:
        report = await s.get(Report, accepted["incident_id"])
    assert report is not None
    assert report.payload["sla"] == {"1": {"routed": 90.0}}
    assert report.payload["sla_scale"] == 0.5
