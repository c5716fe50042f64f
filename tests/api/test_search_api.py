"""Vietnamese search as a new user tries it on PostgreSQL: an upper-case, NFD and toneless
query finds the report through the API's `q`, the CSV export and the console's search box
(the same folding on SQLite is in test_sqlite.py and tests/activities/test_search.py)."""

from __future__ import annotations

import unicodedata
import uuid

from tests.api.conftest import Stack


async def test_upper_nfd_and_toneless_queries_find_the_report(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:8]
    nfd = unicodedata.normalize("NFD", f"ĐÁNH NHAU trước quán nhậu đường Lê Lợi {tag}")
    accepted = await stack.submit(description=nfd)
    await stack.wait_projected(accepted["incident_id"])
    h = stack.auth("operator")
    queries = [f"đánh nhau {tag}", f"ĐÁNH {tag}", unicodedata.normalize("NFD", f"đánh {tag}"),
               f"danh nhau quan nhau {tag}", f"DUONG LE LOI {tag}"]
    for q in queries:
        r = await stack.client.get("/api/v1/incidents", params={"q": q}, headers=h)
        assert [i["id"] for i in r.json()["items"]] == [accepted["incident_id"]], q
        r = await stack.client.get("/api/v1/incidents/export.csv", params={"q": q}, headers=h)
        assert r.text.count(accepted["tracking_code"]) == 1, q
        r = await stack.client.get("/console/incidents", params={"q": q}, headers=h)
        assert r.status_code == 200 and accepted["tracking_code"] in r.text, q
    r = await stack.client.get("/api/v1/incidents", params={"q": f"cướp {tag}"}, headers=h)
    assert r.json()["items"] == []
