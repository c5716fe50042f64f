"""One reading of a Web Push endpoint (core/push_endpoint.py): what is refused, what is
kept and how, and that every URL library reads the same host from what is accepted."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requests import Request
from sqlalchemy import text
from urllib3.util import parse_url

from core.db import make_sync_engine
from core.migrate import upgrade
from core.push_endpoint import EndpointRefused, Refusal, check_endpoint, parse_endpoint
from core.settings import Settings

SETTINGS = Settings(CANHBAO_DEMO="1", CANHBAO_PUSH_TEST_ORIGINS="http://127.0.0.1:8099")
INVALID, NOT_HTTPS, NOT_PUSH = Refusal.INVALID, Refusal.NOT_HTTPS, Refusal.NOT_PUSH_SERVICE


@pytest.mark.parametrize(("endpoint", "reason"), [
    # Issue #20: a backslash ends the host for urllib3 (and browsers), not for urlsplit.
    ("https://127.0.0.1\\.push.apple.com/ssrf-proof", INVALID),
    ("https://evil.example\\.push.apple.com/x", INVALID),
    ("https://evil.example%5c.push.apple.com/x", INVALID),
    ("https://evil.example%5C.push.apple.com/x", INVALID),
    ("https://evil.example%2f.push.apple.com/x", INVALID),
    ("https://evil.example;.push.apple.com/x", INVALID),
    ("https://web.push.apple.com/a\\b", INVALID),
    ("https://web.push.apple.com/%zz", INVALID),
    ("https://web.push.apple.com/x#frag", INVALID),
    ("https://user@web.push.apple.com/x", INVALID),
    ("https://evil.example@web.push.apple.com/x", INVALID),
    ("https://web.push.apple.com./x", INVALID),
    ("https://web..push.apple.com/x", INVALID),
    ("https://-web.push.apple.com/x", INVALID),
    ("https://web.push.apple.com", INVALID),
    ("https://web.push.apple.com:99999/x", INVALID),
    ("https://[::1]/x", INVALID),
    ("https://ｗｅｂ.push.apple.com/x", INVALID),  # fullwidth
    ("https://bücher.push.apple.com/x", INVALID),  # IDN: only its xn-- form
    ("https://web.push.apple.com/x y", INVALID),
    ("https://" + "a" * 250 + ".push.apple.com/x", INVALID),
    ("not a url", INVALID),
    ("", INVALID),
    ("http://web.push.apple.com/x", NOT_HTTPS),
    ("ftp://web.push.apple.com/x", NOT_HTTPS),
    ("https://127.0.0.1/x", NOT_PUSH),
    ("https://127.1/x", NOT_PUSH),
    ("https://2130706433/x", NOT_PUSH),
    ("https://0x7f.1/x", NOT_PUSH),
    ("https://localhost/x", NOT_PUSH),
    ("https://push.apple.com.local/x", NOT_PUSH),
    ("https://web.push.apple.com:8443/x", NOT_PUSH),
    ("https://push.apple.com/x", NOT_PUSH),  # "*." needs a subdomain
    ("https://xn--bcher-kva.push.apple.com.evil.example/x", NOT_PUSH),
    ("http://127.0.0.1:8098/push/x", NOT_HTTPS),  # not the listed test origin
])
def test_refused(endpoint: str, reason: Refusal) -> None:
    with pytest.raises(EndpointRefused) as refused:
        check_endpoint(SETTINGS, endpoint)
    assert refused.value.reason is reason


@pytest.mark.parametrize(("endpoint", "sent_to"), [
    ("https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b-_x", None),
    ("https://updates.push.services.mozilla.com/wpush/v2/gAAAAABl_-x", None),
    ("https://web.push.apple.com/QGf3-_x", None),
    ("https://wns2-par02p.notify.windows.com/w/?token=BQYAAAD%2b%2fx%3d", None),
    ("  https://web.push.apple.com/x  ", "https://web.push.apple.com/x"),
    ("HTTPS://WEB.Push.Apple.COM/AbC", "https://web.push.apple.com/AbC"),
    ("https://web.push.apple.com:443/x", "https://web.push.apple.com/x"),
    ("https://xn--bcher-kva.push.apple.com/x", None),  # an IDN in its ASCII form
    ("http://127.0.0.1:8099/push/abc", None),  # the listed test origin
])
def test_accepted_and_sent_to_the_url_rebuilt(endpoint: str, sent_to: str | None) -> None:
    assert check_endpoint(SETTINGS, endpoint).url == (sent_to or endpoint)


def _hosts(url: str) -> set[str | None]:
    """The host each library that touches an endpoint reads: urllib.parse (the old
    check), urllib3 (under requests/pywebpush) and requests' prepared request."""
    prepared = Request("POST", url).prepare().url or ""
    return {urlsplit(url).hostname, parse_url(url).host, parse_url(prepared).host}


# Characters that have made URL parsers disagree (WHATWG vs RFC 3986 readings).
_TRICKY = st.sampled_from(list("\\/@:;?#%.[]-_~!$&'()*+,= \t") + ["%2f", "%5c", "%40",
                                                                     "%2e", "５", "ß"])
_PIECE = st.one_of(st.text("abcxyz019", min_size=1, max_size=4), _TRICKY)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECE, min_size=1, max_size=12), st.lists(_PIECE, max_size=6))
def test_every_library_reads_the_host_that_was_approved(host: list[str],
                                                        rest: list[str]) -> None:
    raw = "https://" + "".join(host) + ".push.apple.com/" + "".join(rest)
    try:
        endpoint = parse_endpoint(raw)
    except EndpointRefused:
        return
    assert _hosts(raw) == {endpoint.host}
    assert _hosts(endpoint.url) == {endpoint.host}


def test_migration_deletes_stored_endpoints_of_refused_shapes(tmp_path: Path) -> None:
    """0007 deletes the subscriptions (and their queues) the grammar refuses; an allowed
    host list is configuration, so a plain host not on it stays for the worker's check."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0006_citizen_push_expiry")
    endpoints = {"good": "https://web.push.apple.com/x",
                 "not-listed": "https://push.example.com/x",
                 "backslash": "https://127.0.0.1\\.push.apple.com/ssrf-proof",
                 "escaped": "https://evil.example%2f.push.apple.com/x",
                 "semicolon": "https://evil.example;.push.apple.com/x"}
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        for sub_id, endpoint in endpoints.items():
            conn.execute(text(
                "INSERT INTO push_subscriptions (id, incident_id, endpoint, p256dh, auth, "
                "silent, created_at) VALUES (:id, 'i', :e, 'p', 'a', 0, '2026-01-01')"),
                {"id": sub_id, "e": endpoint})
            conn.execute(text(
                "INSERT INTO push_outbox (subscription_id, incident_id, seq, title, body, "
                "urgent, created_at, attempts) VALUES (:id, 'i', 1, 't', 'b', 0, "
                "'2026-01-01', 0)"), {"id": sub_id})
    upgrade(url)
    with engine.connect() as conn:
        subs = set(conn.execute(text("SELECT id FROM push_subscriptions")).scalars())
        queued = set(conn.execute(text("SELECT subscription_id FROM push_outbox")).scalars())
    engine.dispose()
    assert subs == queued == {"good", "not-listed"}


def test_migration_respells_stored_endpoints_as_the_api_stores_them(tmp_path: Path) -> None:
    """0008 rewrites a row stored before 0007 in another spelling of its endpoint (upper
    case, `:443`) to the rebuilt URL an unsubscribe looks up; a row that would repeat one
    the incident already has goes, with its queue."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0007_push_endpoint_shape")
    rows = [("upper", "i", "https://FCM.GoogleAPIs.com/fcm/send/AbC"),
            ("port", "i", "https://web.push.apple.com:443/QzX"),
            ("kept", "j", "https://updates.push.services.mozilla.com/wpush/v2/x"),
            ("twin", "j", "https://UPDATES.push.services.mozilla.com:443/wpush/v2/x")]
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        for sub_id, incident, endpoint in rows:
            conn.execute(text(
                "INSERT INTO push_subscriptions (id, incident_id, endpoint, p256dh, auth, "
                "silent, created_at) VALUES (:id, :i, :e, 'p', 'a', 0, '2026-01-01')"),
                {"id": sub_id, "i": incident, "e": endpoint})
            conn.execute(text(
                "INSERT INTO push_outbox (subscription_id, incident_id, seq, title, body, "
                "urgent, created_at, attempts) VALUES (:id, :i, 1, 't', 'b', 0, "
                "'2026-01-01', 0)"), {"id": sub_id, "i": incident})
    upgrade(url)
    with engine.connect() as conn:
        subs = dict(conn.execute(text("SELECT id, endpoint FROM push_subscriptions")).all())
        queued = set(conn.execute(text("SELECT subscription_id FROM push_outbox")).scalars())
    engine.dispose()
    assert subs == {"upper": "https://fcm.googleapis.com/fcm/send/AbC",
                    "port": "https://web.push.apple.com/QzX",
                    "kept": "https://updates.push.services.mozilla.com/wpush/v2/x"}
    assert queued == {"upper", "port", "kept"}
