"""Which hosts the worker may send a Web Push to (CANHBAO_PUSH_SERVICE_HOSTS)."""

from __future__ import annotations

import pytest

from core.settings import Settings


@pytest.mark.parametrize(("host", "allowed"), [
    ("fcm.googleapis.com", True), ("updates.push.services.mozilla.com", True),
    ("web.push.apple.com", True), ("wns2-bn3p.notify.windows.com", True),
    ("push.services.mozilla.com", False),  # "*." needs a subdomain
    ("xpush.services.mozilla.com", False), ("googleapis.com", False),
    ("evil.example.com", False), ("fcm.googleapis.com.evil.example", False),
])
def test_push_service_hosts(host: str, allowed: bool) -> None:
    assert Settings(CANHBAO_DEMO="1").is_push_service(host) is allowed
