"""The server errors the hostile corpus (test_hostile_corpus.py) found, one test each, so
they stay fixed whatever values its sampling picks:
- a ward filter of 400 digits reached PostgreSQL (integer out of range) from the console;
- "²³" passes `str.isdigit` and then fails `int` (console ward, staff action forms,
  Last-Event-ID): schema.text.ascii_int reads such numbers now;
- an X-Request-ID that is not UTF-8 failed the request middleware;
- JSON nested 100,000 deep (RecursionError, not a ValueError) in the console's group
  rejection form and any JSON body (issue #20): core/jsonbound.py."""

from __future__ import annotations

import uuid

import pytest

from schema.text import ascii_int
from tests.api.conftest import Stack


def test_ascii_int() -> None:
    assert ascii_int("42", 0, 100) == 42
    assert ascii_int("-3", -5, 5) == -3
    for text in (None, "", "²³", "١٢٣", "1e3", " 7", "7 ", "+7", "9" * 400, "101", "0x10"):
        assert ascii_int(text, 0, 100) is None, text


@pytest.mark.parametrize("ward", ["9" * 400, "²³", "-1", "١"])
async def test_console_ward_filter(stack: Stack, ward: str) -> None:
    for path in ("/console", "/console/incidents"):
        r = await stack.client.get(path, params={"ward": ward}, headers=stack.auth("operator"))
        assert r.status_code == 200, (path, r.status_code)


@pytest.mark.parametrize("field,value", [("priority", "²³"), ("priority", "9" * 400),
                                         ("version", "²")])
async def test_console_action_numbers(stack: Stack, field: str, value: str) -> None:
    accepted = await stack.submit()
    await stack.wait_projected(accepted["incident_id"])
    form = {"category": "crime", "priority": "2", field: value}
    r = await stack.client.post(
        f"/console/incidents/{accepted['incident_id']}/actions/classify", data=form,
        headers={**stack.auth("operator"), "HX-Request": "true"})
    assert r.status_code < 500, r.text
    if field == "priority":
        assert r.status_code == 422


async def test_last_event_id_not_ascii_digits(stack: Stack) -> None:
    r = await stack.client.get("/api/v1/events", params={"max_seconds": 0.2},
                               headers={**stack.auth("operator"), "Last-Event-ID": b"\xb2"})
    assert r.status_code == 200


@pytest.mark.parametrize("given", [b"\xed\xa0\x80", b"\xff", b"a b", b"x" * 65])
async def test_request_id_not_a_token(stack: Stack, given: bytes) -> None:
    r = await stack.client.get("/healthz", headers={"X-Request-ID": given})
    assert r.status_code == 200
    assert r.headers["x-request-id"] != given.decode("latin-1")
    ok = await stack.client.get("/healthz", headers={"X-Request-ID": "trace-1.2:3"})
    assert ok.headers["x-request-id"] == "trace-1.2:3"


@pytest.mark.parametrize("token,attachment", [("a\x00b", None), (None, "a\x00b"),
                                              ("x" * 300, None), (None, "../../etc")])
async def test_tracking_file_with_hostile_token_or_id(stack: Stack, token: str | None,
                                                      attachment: str | None) -> None:
    """NUL bytes in the tracking token or the file id reached PostgreSQL (500, and a
    dropped connection): both are checked for their shape first now."""
    from urllib.parse import quote

    accepted = await stack.submit()
    photo = await stack.upload("photo")
    url = (f"/t/{quote(token or accepted['tracking_token'], safe='')}/files/"
           f"{quote(attachment or photo['attachment_id'], safe='')}")
    r = await stack.client.get(url)
    assert r.status_code == 404, r.text
    page = await stack.client.get(f"/t/{quote(token or 'a%00b', safe='')}")
    assert page.status_code < 500


async def test_cancel_form_with_a_reason_past_the_limit(stack: Stack) -> None:
    """The tracking page's cancel form sent a 100,000-character reason straight into the
    workflow input (ValidationError: 500); the service checks it as CancelIn does now."""
    accepted = await stack.submit()
    await stack.wait_projected(accepted["incident_id"])
    token = accepted["tracking_token"]
    r = await stack.client.post(f"/t/{token}/cancel", data={"reason": "A" * 100_000})
    assert r.status_code == 303, r.text
    r = await stack.client.post(f"/t/{token}/cancel", data={"reason": "x" * 2001})
    assert r.status_code == 303, r.text
    view = (await stack.client.get(f"/api/v1/track/{token}")).json()
    assert view["state"] != "cancelled"  # refused, not cut short
    r = await stack.client.post(f"/t/{token}/cancel", data={"reason": "Báo nhầm"})
    assert r.status_code == 303
    view = (await stack.client.get(f"/api/v1/track/{token}")).json()
    assert view["state"] == "cancelled"


DEEP = "[" * 100_000


@pytest.mark.parametrize(("versions", "reason", "key"), [
    (DEEP, "spam", "bad_versions"), ("{" * 100_000, "spam", "bad_versions"),
    ('{"a": ' * 40 + "1" + "}" * 40, "spam", "bad_versions"), ("[1, 2]", "spam", "bad_versions"),
    ("not json", "spam", "bad_versions"), ("{}", "", "need_reason"),
    # NULs made json.loads(bytes) read the field as UTF-16, past a byte-wise depth count.
    ('[\x00"\x00"\x01"\x00,\x00' + "[\x00" * 2000 + '"\x00', "spam", "bad_versions"),
])
async def test_console_group_rejection_json(stack: Stack, versions: str, reason: str,
                                            key: str) -> None:
    for lang, words in (("vi", {"bad_versions": "tải lại trang", "need_reason": "lý do"}),
                        ("en", {"bad_versions": "reload the page", "need_reason": "reason"})):
        r = await stack.client.post(
            f"/console/report-groups/{uuid.uuid4()}/reject?lang={lang}",
            data={"reason": reason, "versions": versions},
            headers={**stack.auth("operator"), "HX-Request": "true"})
        assert r.status_code == 422, r.text
        assert words[key] in r.text, r.text


@pytest.mark.parametrize("body", [DEEP, '{"description": ' + DEEP + "}",
                                  '{"a": ' * 33 + "1" + "}" * 33,
                                  ('["\u0122",' + "[" * 5000 + '"').encode("utf-16-le"),
                                  ("[" * 5000).encode("utf-32")])
async def test_json_body_nested_too_deep(stack: Stack, body: str | bytes) -> None:
    for lang, words in (("en", "nested too deeply"), ("vi", "lồng nhau quá sâu")):
        r = await stack.client.post("/api/v1/reports", content=body,
                                    headers={"Content-Type": "application/json",
                                             "Accept-Language": lang})
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "json_too_deep" and words in r.json()["detail"]


async def test_json_body_too_large(stack: Stack) -> None:
    body = '{"description": "' + "x" * (1 << 20) + '"}'
    r = await stack.client.post("/api/v1/reports", content=body,
                                headers={"Content-Type": "application/json; charset=utf-8",
                                         "Accept-Language": "en"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large", r.text
    # Within the bounds, a body goes through untouched.
    assert (await stack.submit())["tracking_token"]


async def test_open311_json_body_nested_too_deep(stack: Stack) -> None:
    r = await stack.client.post("/open311/v2/requests.json", content=DEEP,
                                headers={"Content-Type": "application/json",
                                         "Accept-Language": "en"})
    assert r.status_code == 422
    assert r.json() == [{"code": 422,
                         "description": "The JSON is nested too deeply (at most 32 levels)"}]


@pytest.mark.parametrize("content_type", [b"application/json\xa0", b"\x85application/json",
                                          b"Application/JSON ; charset=utf-8", None])
async def test_json_guard_reads_the_content_type_as_the_parser_does(
        stack: Stack, content_type: bytes | None) -> None:
    """A type FastAPI still parses as JSON (it strips NBSP and NEL, and parses a body with
    no type at all) is bounded like any other: a tester's finding."""
    headers = {"Content-Type": content_type} if content_type is not None else {}
    deep = await stack.client.post("/api/v1/reports", content=DEEP, headers=headers)
    assert deep.status_code == 422 and deep.json()["error"] == "json_too_deep", deep.text
    big = await stack.client.post("/api/v1/reports", content=b"[" + b" " * (1 << 20) + b"]",
                                  headers=headers)
    assert big.status_code == 413 and big.json()["error"] == "body_too_large", big.text
