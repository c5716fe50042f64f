"""A hostile corpus into every parameter of every endpoint: no answer ≥ 500 and no
dropped connection.

The corpus (NUL and other control characters, a 100,000-character value, right-to-left
text, emoji, stacked combining marks, years 0001/9999/0000, numbers too big for any type,
non-ASCII digits, traversal paths, invalid UTF-8, deep JSON) goes one value at a time into:
- each path, query and header parameter, each JSON body field (and each field one level
  down) and the whole body of every operation of /openapi.json, signed in as staff;
- the web pages' routes (web/routes.py): path parameters, the query parameters pages
  read, the form fields of sign-in, the citizen's report and tracking forms and the staff
  action forms (with a browser session and its CSRF token);
- the request headers the app reads (Authorization, Cookie, Accept-Language, If-Match,
  Idempotency-Key, Last-Event-ID, Origin, Content-Type, ...), multipart file names, part
  types and boundaries; and a few raw requests no client library would send.

The app is served for real (tests/api/served.py), so a dropped connection shows. Bounded
for CI: each parameter takes a few corpus values, in turn, so that every value is used
somewhere (CANHBAO_HOSTILE_PER_PARAMETER=N takes N); CANHBAO_HOSTILE_FULL=1 sends the
whole corpus into every parameter. The number of requests is printed.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import PASSWORD, WARD_A, People
from tests.api.served import serving
from tests.images import real_image

FULL = os.environ.get("CANHBAO_HOSTILE_FULL", "") not in ("", "0")
PER_PARAMETER = int(os.environ.get("CANHBAO_HOSTILE_PER_PARAMETER", "2"))  # bounded run
CONCURRENCY = 4  # requests in flight at once

# Text values (paths, queries, headers, form fields, JSON strings).
TEXTS: list[str] = [
    "",
    "a\x00b",
    "\x00",
    "\x01\x02\x1b[31m\x7f\x85\x9f\u2028\u2029\ufeff\ufffe",
    "A" * 100_000,
    "B" * 20_000,
    "\u202eاختبار עברית\u202c",
    "👮\u200d♂️🚨🏍️" * 20,
    "Z\u0334\u0321\u0319\u0353a\u0337l\u0338g\u0335o\u0336" + "e\u0301\u0323\u0302" * 300,
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "0000-00-00T00:00:00Z",
    "9" * 400,
    "1e308",
    "-1e309",
    "NaN",
    "-Infinity",
    "-1",
    "²³",
    "١٢٣",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fpyproject.toml",
    "..\\..\\..\\windows\\win.ini",
    "/etc/passwd\x00.jpg",
    "' OR 1=1; DROP TABLE incidents; --",
    "<script>alert(1)</script>%s%n{0}{__class__}",
    "\ud800",
    "\U0010ffff\U000e0001",
]
# Further JSON values for body fields.
DEEP = "[" * 5000 + "]" * 5000
JSON_VALUES: list[Any] = [*TEXTS, 1e308, -1e308, float("inf"), float("nan"), 10**40,
                          -(10**40), 2**63, 2**64, -1, 0, 1.5, True, None, [], {},
                          [None] * 1000, {"a": {"b": {"c": []}}}]
# Whole bodies as raw text.
RAW_BODIES: list[str] = ["[]", "1e308", '"x"', "null", "true", "{", "{}" * 10, DEEP,
                         '{"a":' * 3000 + "1" + "}" * 3000, "\ufeff{}", "\x00",
                         json.dumps({"x": "A" * 100_000})]
# Form fields whose value the app reads as JSON, and what each of them always gets.
JSON_FORM_FIELDS = {"versions"}
JSON_TEXTS = [DEEP, "{" * 100_000, '{"a": ' + DEEP + "}", '{"x": 1}' * 50_000]
LEAKS = ("root:x:0:0", "[project]", "[extensions]", "CANHBAO_SECRET")

# Query names the pages read (request.query_params) beside those in the OpenAPI.
PAGE_QUERY = ["lang", "msg", "next", "selected", "part", "from", "to", "q", "state", "ward",
              "category", "priority", "overdue", "unit", "lat", "lon", "cursor", "limit",
              "sort", "rows"]
ACTION_FORM = ["reason", "into_incident_id", "category", "priority", "ward_code", "unit_id",
               "text", "attachment_ids", "public", "outcome", "summary", "headline",
               "instruction", "radius_m", "idempotency_key", "version"]
REPORT_FORM = ["category", "description", "lat", "lon", "accuracy_m", "address", "name",
               "phone", "silent", "report_id", "lang"]


def pick(values: list[Any], index: int) -> list[Any]:
    """The values parameter number `index` takes: all of them in a full run, else
    PER_PARAMETER of them, in turn."""
    if FULL:
        return values
    return [values[(index * PER_PARAMETER + j) % len(values)] for j in range(PER_PARAMETER)]


@dataclass
class Req:
    label: str
    method: str
    url: str
    params: dict[str, Any] | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    content: bytes | None = None
    data: dict[str, Any] | None = None
    files: Any = None
    check_leak: bool = False


@dataclass
class World:
    """What the valid parts of a request use: real ids, tokens and a browser session."""

    base: str
    incident_id: str
    other_incident_id: str
    tracking_token: str
    attachment_id: str
    ward_code: int
    bearer: dict[str, str]
    officer_bearer: dict[str, str]
    cookies: dict[str, dict[str, str]]  # role -> cookies of a browser session
    csrf: dict[str, str]


def _path_value(value: str) -> str:
    return urllib.parse.quote(value, safe="", errors="surrogatepass")


def _header_bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _text(value: str) -> str:
    """`value` with lone surrogates made U+FFFD (for what the client encodes itself)."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


def sample(schema: dict[str, Any], spec: dict[str, Any], name: str = "",
           world: World | None = None) -> Any:
    """A valid instance of a JSON schema, enough for one hostile field at a time to be
    the only thing wrong."""
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        return sample(spec["components"]["schemas"][ref], spec, name, world)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return sample(options[0], spec, name, world) if options else None
    if "allOf" in schema:
        return sample(schema["allOf"][0], spec, name, world)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: sample(v, spec, k, world) for k, v in schema.get("properties", {}).items()
                if k in schema.get("required", []) or k in ("location", "reporter", "text")}
    if kind == "array":
        return []
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        if name in ("lat", "lon") and world is not None:
            return 10.7725 if name == "lat" else 106.6980
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    return "Nội dung thử " + name


def _api_requests(spec: dict[str, Any], world: World) -> Iterator[Req]:
    known_path = {"incident_id": world.incident_id, "action": "note",
                  "attachment_id": world.attachment_id, "kind": "thumbnail",
                  "tracking_token": world.tracking_token, "code": str(world.ward_code),
                  "service_code": "crime", "service_request_id": world.incident_id,
                  "alert_id": str(uuid.uuid4())}
    index = 0
    for path, ops in sorted(spec["paths"].items()):
        for method, op in sorted(ops.items()):
            params = op.get("parameters", [])
            base_path = {p["name"]: known_path.get(p["name"], "x")
                         for p in params if p["in"] == "path"}
            base_query: dict[str, Any] = {}
            for p in params:
                if p["in"] == "query" and p.get("required"):
                    base_query[p["name"]] = sample(p["schema"], spec, p["name"], world)
            if path == "/api/v1/events":
                base_query["max_seconds"] = 0.2
            body_schema = (op.get("requestBody") or {}).get("content", {})
            headers = dict(world.officer_bearer if "officer" in path else world.bearer)
            if path.startswith("/api/v1/incidents/") and method == "post":
                headers = dict(world.bearer)

            def url(over: dict[str, str] | None = None,
                    _path: str = path, _base: dict[str, str] = base_path) -> str:
                values = {**_base, **(over or {})}
                return world.base + _path.format(**{k: _path_value(v) for k, v in values.items()})

            base_body: str | None = None
            form_fields: list[str] = []
            if "application/json" in body_schema:
                instance = sample(body_schema["application/json"]["schema"], spec, "", world)
                if path.endswith("/actions/{action}"):
                    instance = {"text": "Ghi chú"}
                base_body = _json(instance)
            elif "application/x-www-form-urlencoded" in body_schema:
                s = body_schema["application/x-www-form-urlencoded"]["schema"]
                props = sample({"$ref": s["$ref"]}, spec) if "$ref" in s else {}
                ref = s.get("$ref", "").split("/")[-1]
                form_fields = list(spec["components"]["schemas"].get(ref, {})
                                   .get("properties", {})) or list(props)
            label = f"{method.upper()} {path}"
            # Path parameters.
            for name in base_path:
                for value in pick(TEXTS, index):
                    yield Req(f"{label} path {name}", method, url({name: value}), base_query,
                              headers, base_body.encode() if base_body else None)
                index += 1
            # Query parameters.
            for p in [p for p in params if p["in"] == "query"]:
                for value in pick(TEXTS, index):
                    yield Req(f"{label} query {p['name']}", method, url(),
                              {**base_query, p["name"]: value}, headers,
                              base_body.encode() if base_body else None)
                index += 1
            # Header parameters.
            for p in [p for p in params if p["in"] == "header"]:
                for value in pick(TEXTS, index):
                    yield Req(f"{label} header {p['name']}", method, url(), base_query,
                              {**headers, p["name"]: _header_bytes(value)},
                              base_body.encode() if base_body else None)
                index += 1
            # JSON body: each field, each field one level down, the whole body.
            if base_body is not None:
                instance = json.loads(base_body)
                targets: list[tuple[str, ...]] = []
                if isinstance(instance, dict):
                    for k, v in instance.items():
                        targets.append((k,))
                        if isinstance(v, dict):
                            targets += [(k, k2) for k2 in v]
                    targets.append(("unexpected_field",))
                for target in targets:
                    for value in pick(JSON_VALUES, index):
                        body = json.loads(base_body)
                        node = body
                        for part in target[:-1]:
                            node = node[part]
                        node[target[-1]] = value
                        yield Req(f"{label} body {'.'.join(target)}", method, url(),
                                  base_query, {**headers, "Content-Type": "application/json"},
                                  _json(body).encode())
                    index += 1
                for raw in pick(RAW_BODIES, index):
                    yield Req(f"{label} whole body", method, url(), base_query,
                              {**headers, "Content-Type": "application/json"},
                              raw.encode("utf-8", "surrogatepass"))
                index += 1
            for name in form_fields:
                for value in pick(TEXTS, index):
                    data = {f: "x" for f in form_fields}
                    data[name] = value
                    yield Req(f"{label} form {name}", method, url(), base_query, headers,
                              data=data)
                index += 1


def _page_requests(world: World, people: People) -> Iterator[Req]:
    iid, token, att = world.incident_id, world.tracking_token, world.attachment_id
    gets = {
        "/": {}, "/offline": {}, "/login": {}, "/t/{token}": {"token": token},
        "/t/{token}/files/{attachment_id}": {"token": token, "attachment_id": att},
        "/console": {}, "/console/incidents": {}, "/console/incidents/{incident_id}":
        {"incident_id": iid}, "/console/wards.geojson": {}, "/officer": {},
        "/officer/incidents/{incident_id}": {"incident_id": iid}, "/supervisor": {},
        "/geo/ward": {}, "/static/vendor/{name}": {"name": "htmx.min.js"},
        "/docs-assets/{name}": {"name": "swagger-ui.css"}, "/open311/v2/{rest}": {"rest": "x"},
    }
    index = 1000
    for template, base in gets.items():
        role = "officer" if template.startswith("/officer") else (
            "supervisor" if template.startswith("/supervisor") else "operator")
        cookies = world.cookies[role]

        def url(over: dict[str, str] | None = None, _t: str = template,
                _b: dict[str, str] = base) -> str:
            values = {**_b, **(over or {})}
            return world.base + _t.format(**{k: _path_value(v) for k, v in values.items()})
        for name in base:
            for value in pick(TEXTS, index):
                yield Req(f"GET {template} path {name}", "get", url({name: value}),
                          headers={"Cookie": _cookie(cookies)}, check_leak=True)
            index += 1
        for name in PAGE_QUERY:
            for value in pick(TEXTS, index):
                query = {name: value}
                if template == "/geo/ward" and name not in ("lat", "lon"):
                    query.update(lat="10.77", lon="106.69")
                yield Req(f"GET {template} query {name}", "get", url(), query,
                          {"Cookie": _cookie(cookies), "HX-Request": "true"})
            index += 1
    # Forms: sign-in, the citizen's report and tracking, the staff action forms.
    forms: list[tuple[str, str, list[str], str | None]] = [
        ("/login", "login", ["username", "password", "next", "csrf_token"], None),
        ("/t/{token}/cancel", "cancel", ["reason", "lang"], None),
    ]
    for page, role in (("console", "operator"), ("officer", "officer"),
                       ("supervisor", "supervisor")):
        forms.append((f"/{page}/incidents/{{incident_id}}/actions/{{action}}", "action",
                      ACTION_FORM, role))
    # The console's one dispatch form (verify, classify and route in turn).
    forms.append(("/console/incidents/{incident_id}/dispatch", "dispatch", ACTION_FORM,
                  "operator"))
    # The console's flood-group forms; "versions" is JSON read from a form field.
    for verb in ("reject", "not-spam"):
        forms.append((f"/console/report-groups/{{group_id}}/{verb}", "group",
                      ["reason", "versions"], "operator"))
    actions = ["note", "classify", "route", "reject", "publish_alert", "close", "merge",
               "reassign", "acknowledge", "arrive", "verify", "bogus"]
    for template, kind, names, role in forms:
        for name in names:
            values = pick(TEXTS, index) + (JSON_TEXTS if name in JSON_FORM_FIELDS else [])
            for n, value in enumerate(values):
                action = actions[(index + n) % len(actions)]
                path = template.format(token=_path_value(token), incident_id=iid,
                                       action=action, group_id=uuid.uuid4())
                headers: dict[str, Any] = {}
                if role:
                    headers = {"Cookie": _cookie(world.cookies[role]),
                               "X-CSRF-Token": world.csrf[role], "HX-Request": "true"}
                data = {f: "1" for f in names}
                data[name] = value
                if kind == "login":
                    data.update(username=people.users["operator"].username
                                if name != "username" else value,
                                password="wrong" if name != "password" else value)
                yield Req(f"POST {template} form {name}", "post", world.base + path,
                          headers=headers, data=data)
            index += 1
        for value in pick(TEXTS, index):  # the action in the path
            if role:
                path = template.format(incident_id=_path_value(value),
                                       action=_path_value(value),
                                       group_id=_path_value(value))
                yield Req(f"POST {template} path", "post", world.base + path,
                          headers={"Cookie": _cookie(world.cookies[role]),
                                   "X-CSRF-Token": world.csrf[role]}, data={"text": "x"})
        index += 1
    # Multipart forms with files: the citizen's report, tracking info, the API upload.
    image = real_image("JPEG", (32, 24))
    for name in [*REPORT_FORM, "media"]:
        for value in pick(TEXTS, index):
            data = {"category": "crime", "description": "Có người đánh nhau",
                    "lat": "10.7725", "lon": "106.6980", "lang": "vi"}
            files: list[Any] = [("media", ("anh.jpg", image, "image/jpeg"))]
            if name == "media":
                files = [("media", (value, image, "image/jpeg")),
                         ("media", ("x.jpg", image, _text(value)))]
            else:
                data[name] = value
            yield Req(f"POST /report form {name}", "post", world.base + "/report",
                      data=data, files=files)
        index += 1
    for name in ("text", "filename"):
        for value in pick(TEXTS, index):
            data = {"text": value if name == "text" else "Thêm"}
            fname = value if name == "filename" else "a.jpg"
            yield Req(f"POST /t/{{token}}/info form {name}", "post",
                      f"{world.base}/t/{_path_value(token)}/info", data=data,
                      files=[("media", (fname, image, "image/jpeg"))])
        index += 1
    for what in ("filename", "content_type", "field"):
        for value in pick(TEXTS, index):
            part = (value if what == "filename" else "a.jpg", image,
                    _text(value) if what == "content_type" else "image/jpeg")
            yield Req(f"POST /api/v1/attachments multipart {what}", "post",
                      world.base + "/api/v1/attachments",
                      files=[(value if what == "field" else "file", part)])
        index += 1


def _header_requests(world: World) -> Iterator[Req]:
    """The headers the app reads, on routes that read them."""
    targets = [("get", "/api/v1/incidents", None), ("get", "/api/v1/events?max_seconds=0.2",
                                                    None),
               ("post", f"/api/v1/incidents/{world.incident_id}/actions/note",
                b'{"text": "Ghi ch\\u00fa"}'),
               ("get", "/console", None), ("post", "/api/v1/reports", b"{}"),
               ("get", f"/t/{world.tracking_token}", None),
               ("post", "/api/v1/auth/login", b"username=a&password=b")]
    names = ["Authorization", "Cookie", "Accept-Language", "If-Match", "Idempotency-Key",
             "Last-Event-ID", "X-Request-ID", "Origin", "Referer", "Sec-Fetch-Site",
             "Content-Type", "HX-Request", "X-CSRF-Token", "Accept-Encoding", "Host"]
    index = 5000
    for method, path, body in targets:
        for name in names:
            for value in pick(TEXTS, index):
                headers: dict[str, Any] = dict(world.bearer)
                encoded = _header_bytes(value)
                if name == "Authorization":
                    headers[name] = b"Bearer " + encoded
                elif name == "Cookie":
                    headers[name] = b"canhbao_session=" + encoded + b"; lang=" + encoded
                else:
                    headers[name] = encoded
                yield Req(f"{method.upper()} {path.split('?')[0]} header {name}", method,
                          world.base + path, headers=headers, content=body)
            index += 1


RAW_TARGETS = [
    b"/static/vendor/../../../../etc/passwd", b"/static/vendor/%2e%2e/%2e%2e/pyproject.toml",
    b"/static/vendor/..%2f..%2f..%2fpyproject.toml", b"/docs-assets/..%2f..%2fpackage.json",
    b"/t/%FF%FE%00", b"/api/v1/incidents/%00", b"/api/v1/incidents?q=%FF%FE&state=%C0%AF",
    b"/api/v1/track/%ED%A0%80", b"/open311/v2/requests/%00.json", b"/t/" + b"A" * 70_000,
    b"/console?selected=%00&q=%FF", b"//etc/passwd", b"/api/v1/../../etc/passwd",
    b"/cap/alerts/..%2F..%2Fetc%2Fpasswd.xml", b"/t/x/files/..%2F..%2Fpyproject.toml",
]


def _raw(base: str, target: bytes, extra: bytes = b"") -> tuple[int, bytes]:
    """Send one request as bytes; (status, body), status 0 when no answer came."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
                     + extra + b"Connection: close\r\n\r\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/1.1 "):
        return 0, answer
    return int(answer[9:12]), answer


def _cookie(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


@pytest.fixture(scope="module")
def world(pg_url: str, temporal_env: WorkflowEnvironment, people: People,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    var = Path(tmp_path_factory.mktemp("hostile"))
    with serving(pg_url, temporal_env, var, "tq-hostile") as (base, app_settings), \
            httpx.Client(base_url=base, timeout=60) as client:
        from api.auth import make_token

        def bearer(who: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {make_token(app_settings, people.users[who])}"}

        place = people.places[WARD_A]
        photo = client.post("/api/v1/attachments",
                            files={"file": ("a.jpg", real_image("JPEG", (64, 48)),
                                            "image/jpeg")})
        assert photo.status_code == 201, photo.text
        reports = []
        for _ in range(2):
            r = client.post("/api/v1/reports", json={
                "category": "crime", "description": "Có người giật túi xách",
                "location": {"lat": place.lat, "lon": place.lon},
                "attachments": [photo.json()["attachment_id"]] if not reports else []})
            assert r.status_code == 202, r.text
            reports.append(r.json())
        cookies: dict[str, dict[str, str]] = {}
        csrf: dict[str, str] = {}
        for role, user in (("operator", "operator"), ("officer", "officer_a"),
                           ("supervisor", "supervisor")):
            with httpx.Client(base_url=base) as browser:
                r = browser.post("/api/v1/auth/login", data={
                    "username": people.users[user].username, "password": PASSWORD},
                    headers={"Origin": base})
                assert r.status_code == 200, r.text
                cookies[role] = dict(browser.cookies)
                csrf[role] = r.json()["csrf_token"]
        yield World(base=base, incident_id=reports[0]["incident_id"],
                    other_incident_id=reports[1]["incident_id"],
                    tracking_token=reports[0]["tracking_token"],
                    attachment_id=photo.json()["attachment_id"], ward_code=place.code,
                    bearer=bearer("supervisor"), officer_bearer=bearer("officer_a"),
                    cookies=cookies, csrf=csrf)


def test_hostile_corpus_gets_no_server_error(world: World, people: People) -> None:
    failures: list[str] = []
    sent = refused_by_client = 0

    def send(client: httpx.Client, req: Req) -> None:
        nonlocal sent, refused_by_client
        try:
            r = client.request(req.method, req.url, params=req.params, headers=req.headers,
                               content=req.content, data=req.data, files=req.files)
        except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError):
            # Not sendable (NUL/CR in a header, a URL past 64 KiB): the raw requests
            # below send such bytes.
            refused_by_client += 1
            return
        except httpx.TransportError as exc:
            sent += 1
            failures.append(f"{req.label}: connection dropped ({exc!r})")
            return
        sent += 1
        if r.status_code >= 500:
            failures.append(f"{req.label}: {r.status_code} {r.text[:200]}")
        if req.check_leak and r.status_code == 200 and any(s in r.text for s in LEAKS):
            failures.append(f"{req.label}: {req.url[:120]} leaks a file")

    with httpx.Client(timeout=60) as client:
        spec = client.get(f"{world.base}/openapi.json").json()
        requests = [*_api_requests(spec, world), *_page_requests(world, people),
                    *_header_requests(world)]
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda req: send(client, req), requests))
    raw = 0
    for target in RAW_TARGETS:
        for extra in (b"", b"X-Request-ID: \x01\xff\r\n", b"Accept-Language: \xff\xfe\r\n",
                      b"Cookie: canhbao_session=\xc0\xaf; lang=\xff\r\n"):
            status, body = _raw(world.base, target, extra)
            raw += 1
            if status == 0 or status >= 500:
                failures.append(f"raw {target[:80]!r} {extra!r}: {status} {body[:200]!r}")
            if status == 200 and any(s.encode() in body for s in LEAKS):
                failures.append(f"raw {target[:80]!r}: leaks a file")
    print(f"\nhostile corpus: {sent + raw} requests ({sent} through httpx, {raw} raw; "  # noqa: T201
          f"{refused_by_client} not sendable by the client), {len(failures)} failures")
    assert sent > 500
    assert not failures, "\n".join(failures[:40])
