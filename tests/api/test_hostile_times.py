"""Times at the edges of what Python holds (year 0001 at +14:00, 9999 at -12:00) are a
422 a client can act on, never a 500 or a dropped connection."""

from __future__ import annotations

import pytest

from tests.api.conftest import Stack

EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1900-01-01T00:00:00Z",
         "2999-01-01T00:00:00Z"]


@pytest.mark.parametrize("when", EDGES)
async def test_stats_and_open311_refuse_times_out_of_range(stack: Stack, when: str) -> None:
    for params in ({"from": when}, {"to": when, "group_by": "ward"},
                   {"from": when, "group_by": "unit"}):
        r = await stack.client.get("/api/v1/stats", params=params,
                                   headers=stack.auth("supervisor"))
        assert r.status_code == 422, (params, r.text)
        assert "1970" in r.text
    for name in ("start_date", "end_date"):
        r = await stack.client.get("/open311/v2/requests.json", params={name: when},
                                   headers=stack.auth("operator"))
        assert r.status_code in (400, 422), (name, r.text)
    ok = await stack.client.get("/api/v1/stats", params={"from": "2026-01-01T00:00:00+07:00"},
                                headers=stack.auth("supervisor"))
    assert ok.status_code == 200, ok.text
