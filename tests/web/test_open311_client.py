"""An Open311 client library from PyPI (`georeport`, requests-based) reads the running app
over HTTP: services, a service definition, one request and several requests by id. The
library has no call to create a request, so that one is a plain form POST as the GeoReport
v2 spec describes it."""

from __future__ import annotations

from datetime import datetime

import httpx
from georeport import GeoReport

from tests.web.conftest import LiveServer

# Another ward than the staff tests' (their duplicate lists stay theirs).
AWAY = (10.7626, 106.6822)


def test_georeport_client_reads_services_and_requests(live_server: LiveServer) -> None:
    client = GeoReport(f"{live_server.url}/open311/v2", jurisdiction="tphcm.gov.vn")
    services = client.get_service_list()
    assert {s["service_code"] for s in services} == {"crime", "traffic_accident",
                                                     "fire_explosion", "other"}
    assert client.get_service_definition("crime") == {"service_code": "crime",
                                                      "attributes": []}
    ids = []
    for code in ("crime", "fire_explosion"):
        r = httpx.post(f"{live_server.url}/open311/v2/requests.json", data={
            "jurisdiction_id": "tphcm.gov.vn", "service_code": code,
            "lat": str(AWAY[0]), "long": str(AWAY[1]),
            "description": f"Tin báo qua Open311 ({code})", "first_name": "Lan"}, timeout=20)
        assert r.status_code == 201, r.text
        ids.append(r.json()[0]["service_request_id"])
    one = client.get_service_request(ids[0])
    assert one["service_request_id"] == ids[0] and one["service_code"] == "crime"
    assert one["service_name"] == "Tội phạm" and one["status"] == "open"
    assert datetime.fromisoformat(one["requested_datetime"]).utcoffset() is not None
    both = client.get_service_requests(service_request_id=",".join(ids))
    assert sorted(x["service_request_id"] for x in both) == sorted(ids)
    assert {x["service_name"] for x in both} == {"Tội phạm", "Cháy nổ"}
