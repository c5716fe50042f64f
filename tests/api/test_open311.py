"""Open311 GeoReport v2 conformance: comma-separated service_code and status, service_name
from the current category, jurisdiction_id accepted, every error as [{code, description}],
times in ISO 8601 with an offset. (An Open311 client library from PyPI reads the running
app in tests/web/test_open311_client.py.)"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.api.conftest import Stack

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00$")


async def _post(stack: Stack, code: str, text: str) -> str:
    place = stack.people.places["ben_thanh"]
    r = await stack.client.post("/open311/v2/requests.json", data={
        "jurisdiction_id": "tphcm.gov.vn", "service_code": code, "lat": str(place.lat),
        "long": str(place.lon), "description": text})
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    await stack.wait_projected(rid)
    return rid


async def test_lists_filters_names_and_times(stack: Stack) -> None:
    crime = await _post(stack, "crime", "Trộm xe")
    fire = await _post(stack, "fire_explosion", "Khói")
    traffic = await _post(stack, "traffic_accident", "Va chạm")
    h = stack.auth("operator")

    async def listed(**params: str) -> set[str]:
        r = await stack.client.get("/open311/v2/requests.json",
                                   params={"jurisdiction_id": "tphcm.gov.vn", **params},
                                   headers=h)
        assert r.status_code == 200, r.text
        return {x["service_request_id"] for x in r.json()} & {crime, fire, traffic}

    assert await listed(service_code="crime,fire_explosion") == {crime, fire}
    assert await listed(service_code=" traffic_accident , crime ") == {crime, traffic}
    assert await listed(status="open") == {crime, fire, traffic}
    assert await listed(status="open,closed") == {crime, fire, traffic}
    assert await listed(status="closed") == set()
    assert await listed(service_code="crime", status="closed,open") == {crime}
    # Reclassified: service_code and service_name both follow the current category.
    r = await stack.act(crime, "classify", "operator", {"category": "fire_explosion",
                                                        "priority": 1})
    assert r.status_code == 200, r.text
    one = (await stack.client.get(f"/open311/v2/requests/{crime}.json",
                                  params={"jurisdiction_id": "tphcm.gov.vn"})).json()[0]
    assert one["service_code"] == "fire_explosion" and one["service_name"] == "Cháy nổ"
    assert await listed(service_code="fire_explosion") == {crime, fire}
    for key in ("requested_datetime", "updated_datetime"):
        assert TIME.match(one[key]), one[key]
        assert datetime.fromisoformat(one[key]).utcoffset() is not None
    services = (await stack.client.get("/open311/v2/services.json",
                                       params={"jurisdiction_id": "x"})).json()
    assert {s["service_code"] for s in services} >= {"crime", "fire_explosion"}


@pytest.mark.parametrize(("method", "path", "params", "code"), [
    ("GET", "/open311/v2/requests.json", {"service_code": "crime,weather"}, 400),
    ("GET", "/open311/v2/requests.json", {"status": "pending"}, 400),
    ("GET", "/open311/v2/requests.json", {"start_date": "yesterday"}, 400),
    ("GET", "/open311/v2/requests.json", {"end_date": "2026-13-45T00:00:00Z"}, 400),
    ("GET", "/open311/v2/requests.json", {}, 401),
    ("GET", "/open311/v2/requests/not-an-id.json", {}, 404),
    ("GET", "/open311/v2/services/weather.json", {}, 404),
    ("GET", "/open311/v2/requests.xml", {}, 404),
    ("GET", "/open311/v2/nothing/here", {}, 404),
    ("POST", "/open311/v2/requests.json", {"service_code": "crime"}, 400),
    ("POST", "/open311/v2/requests.json",
     {"service_code": "crime", "lat": "x", "long": "106.7", "description": "a"}, 400),
])
async def test_every_error_is_in_the_georeport_format(make_stack, method: str, path: str,
                                                      params: dict, code: int) -> None:
    stack = await make_stack(with_worker=False)
    described = {}
    for lang in ("vi", "en"):
        headers = {"Accept-Language": lang}
        if method == "GET":
            r = await stack.client.get(path, params=params, headers=headers)
        else:
            r = await stack.client.post(path, data=params, headers=headers)
        assert r.status_code == code, r.text
        body = r.json()
        assert isinstance(body, list) and len(body) == 1, body
        assert body[0]["code"] == code and isinstance(body[0]["description"], str)
        described[lang] = body[0]["description"]
    # In the caller's language, as every error of the API: Vietnamese unless English is
    # asked for.
    assert described["vi"] and described["en"] and described["vi"] != described["en"]
    assert described["en"].isascii(), described


async def test_the_notice_speaks_the_callers_language_with_an_absolute_link(
        stack: Stack) -> None:
    place = stack.people.places["ben_thanh"]
    form = {"service_code": "crime", "lat": str(place.lat), "long": str(place.lon),
            "description": "Trộm xe"}
    assert not stack.settings.public_url  # the link comes from the request then
    vi = (await stack.client.post("/open311/v2/requests.json", data=form)).json()[0]
    en = (await stack.client.post("/open311/v2/requests.json", data=form,
                                  headers={"Accept-Language": "en"})).json()[0]
    assert vi["service_notice"].startswith("Mã tin báo ")
    assert f"Theo dõi: http://testserver/t/{vi['token']}" in vi["service_notice"]
    assert en["service_notice"].startswith("Tracking code ")
    assert en["service_notice"].endswith(f"http://testserver/t/{en['token']}")
