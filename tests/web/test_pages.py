"""Language negotiation, messages and the CSP, without a browser."""

from __future__ import annotations

from starlette.requests import Request

from web import i18n
from web.templating import content_security_policy


def _request(query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": query.encode(),
             "headers": headers}
    return Request(scope)


def test_language_order_query_cookie_header_default() -> None:
    assert i18n.negotiate(_request()) == ("vi", False)
    assert i18n.negotiate(_request(accept="en-US,en;q=0.9")) == ("en", False)
    assert i18n.negotiate(_request(cookie="lang=vi", accept="en-US")) == ("vi", False)
    assert i18n.negotiate(_request(query="lang=en", cookie="lang=vi")) == ("en", True)
    assert i18n.negotiate(_request(query="lang=fr", accept="fr-FR")) == ("vi", False)


def test_page_words_fall_back_to_vietnamese_then_the_key() -> None:
    """The catalogues themselves are checked in tests/schema/test_words.py; a page asking
    for a key built from data that no catalogue has shows the key rather than failing."""
    assert i18n.t("en", "report.located", accuracy=12).startswith("Location found (about 12 m")
    assert i18n.t("xx", "report.send") == "Gửi báo tin"
    assert i18n.t("vi", "no.such.key") == "no.such.key"
    assert i18n.js_messages("en")["up.done"] == "Sent"
    assert not [k for k in i18n.js_messages("vi") if not k.startswith(i18n.JS_PREFIXES)]


def test_csp_is_strict_and_allows_the_tile_host_only_when_set() -> None:
    csp = content_security_policy("")
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "img-src 'self' data: blob:;" in csp
    tiles = content_security_policy("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: https://*.tile.example.org;" in tiles


def test_tracking_story_lines_tell_only_what_the_citizen_may_read() -> None:
    """Plain words per step, public notes only, the citizen's own additions shown back,
    the closing outcome translated, and of a primary incident nothing another reporter
    sent."""
    from datetime import UTC, datetime

    from schema.tables import IncidentEvent
    from web.tracking_story import _entry

    def ev(action: str, actor: str = "op1", data: dict | None = None,
           note: str | None = None, to_state: str | None = None) -> IncidentEvent:
        return IncidentEvent(incident_id="i", seq=1, at=datetime(2026, 11, 28, tzinfo=UTC),
                             actor=actor, actor_role="operator", action=action,
                             to_state=to_state, data=data or {}, public_note=note)

    assert _entry(ev("verify"), "vi", {}, "tok")["text"] == i18n.t("vi", "story.verify")
    routed = _entry(ev("route", data={"unit_name": "Công an phường Bến Thành"}), "en", {}, "t")
    assert routed["text"] == "Assigned to Công an phường Bến Thành."
    assert _entry(ev("note", note=None, data={"text": "internal"}), "vi", {}, "t") is None
    public = _entry(ev("note", note="Đã cử tổ tuần tra."), "vi", {}, "t")
    assert public["quote"] == "Đã cử tổ tuần tra."
    closed = _entry(ev("close", data={"outcome": "false_alarm", "summary": "Không có gì."}),
                    "en", {}, "t")
    assert (closed["outcome"], closed["summary"]) == ("False alarm", "Không có gì.")
    mine = _entry(ev("add_info", actor="citizen", data={"text": "Áo xanh"}), "vi", {}, "t")
    assert mine["mine"] and mine["quote"] == "Áo xanh"
    assert _entry(ev("add_info", actor="citizen", data={"text": "x"}), "vi", {}, "t",
                  primary=True) is None
    assert _entry(ev("locate"), "vi", {}, "t") is None
    assert _entry(ev("primary_changed", note="Vụ việc đã được xử lý xong."), "vi", {}, "t") is None
