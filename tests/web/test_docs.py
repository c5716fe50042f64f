"""/docs renders the app's OpenAPI 3.1 document in Chromium with Swagger UI 5 from npm
(the old bundle said "Unable to render this definition"), served from this origin."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.web.conftest import LiveServer

pytestmark = pytest.mark.browser


def test_docs_list_the_operations(browser: Browser, live_server: LiveServer) -> None:
    ctx = browser.new_context(base_url=live_server.url)
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("CanhBao API",
                                                                      timeout=20_000)
    expect(page.locator(".swagger-ui")).not_to_contain_text("Unable to render")
    ops = page.locator(".opblock-summary-path")
    expect(ops.first).to_be_visible()
    paths = set(ops.all_inner_texts())
    for path in ("/api/v1/reports", "/api/v1/incidents", "/api/v1/incidents/{incident_id}",
                 "/open311/v2/requests.json", "/cap/alerts.atom"):
        assert any(p.replace("\u200b", "") == path for p in paths), (path, sorted(paths)[:10])
    assert page.locator(".opblock-post").count() >= 5
    assert page.locator(".version-stamp .version").first.inner_text().startswith("OAS 3.1")
    assert all(u.startswith(live_server.url) for u in requests), requests
    assert not errors, errors
    ctx.close()
