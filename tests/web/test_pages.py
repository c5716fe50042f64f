"""Language negotiation, messages and the CSP, without a browser."""

from __future__ import annotations

from types import SimpleNamespace

from starlette.requests import Request

from web import i18n
from web.templating import content_security_policy


def _request(query: str = "", cookie: str = "", accept: str = "", tile_url: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    app = SimpleNamespace(state=SimpleNamespace(settings=SimpleNamespace(map_tile_url=tile_url)))
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": query.encode(),
             "headers": headers, "app": app}
    return Request(scope)


def test_language_order_query_cookie_header_default() -> None:
    assert i18n.negotiate(_request()) == ("vi", False)
    assert i18n.negotiate(_request(accept="en-US,en;q=0.9")) == ("en", False)
    assert i18n.negotiate(_request(cookie="lang=vi", accept="en-US")) == ("vi", False)
    assert i18n.negotiate(_request(query="lang=en", cookie="lang=vi")) == ("en", True)
    assert i18n.negotiate(_request(query="lang=fr", accept="fr-FR")) == ("vi", False)


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    vi, en = i18n.CATALOGS["vi"], i18n.CATALOGS["en"]
    assert set(vi) == set(en)
    for key in vi:
        assert sorted(_fields(vi[key])) == sorted(_fields(en[key])), key
    assert i18n.t("en", "report.located", accuracy=12).startswith("Location found (about 12 m")
    assert i18n.t("xx", "report.send") == "Gửi báo tin"
    assert i18n.t("vi", "no.such.key") == "no.such.key"


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def test_csp_is_strict_and_allows_the_tile_host_only_when_set() -> None:
    csp = content_security_policy(_request())
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "img-src 'self' data: blob:;" in csp
    tiles = content_security_policy(
        _request(tile_url="https://{s}.tile.example.org/{z}/{x}/{y}.png"))
    assert "img-src 'self' data: blob: https://*.tile.example.org;" in tiles


def test_tracking_notes_do_not_repeat_the_state() -> None:
    """A note that restates its own state is dropped; a merged report's note about its
    primary is shown translated; an officer's own words stay as written."""
    from schema.states import STATE_PUBLIC_NOTES, State
    from web.routes import _public_entry

    def entry(state: State, note: str | None) -> SimpleNamespace:
        return SimpleNamespace(at="2026-11-28T10:00:00Z", state=state, public_note=note)

    vi, en = "vi", "en"
    own = entry(State.VERIFIED, STATE_PUBLIC_NOTES[State.VERIFIED])
    assert _public_entry(own, vi)["note"] is None
    primary = entry(State.MERGED, STATE_PUBLIC_NOTES[State.ON_SCENE])
    assert _public_entry(primary, vi)["note"] == i18n.t("vi", "state.on_scene")
    assert _public_entry(primary, en)["note"] == i18n.t("en", "state.on_scene")
    words = entry(State.ON_SCENE, "Đã đưa người bị thương đi cấp cứu")
    assert _public_entry(words, en)["note"] == "Đã đưa người bị thương đi cấp cứu"
