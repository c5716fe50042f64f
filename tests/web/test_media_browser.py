"""A HEIC photo from an iPhone shows in the console in Chromium (which cannot decode HEIC):
the page shows the JPEG rendition and links the original."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.api.test_media import phone_photo
from tests.web.conftest import LiveServer
from tests.web.steps import NEWEST, sign_in, watch_errors

pytestmark = pytest.mark.browser

# Another ward than the staff tests' (their duplicate lists stay theirs).
AWAY = (10.7626, 106.6822)


def test_heic_photo_shows_in_the_console(live_server: LiveServer, staff: dict[str, Any],
                                         desktop: Callable[..., BrowserContext],
                                         artifacts_dir: Path) -> None:
    heic = phone_photo("HEIF")
    with httpx.Client(base_url=live_server.url, timeout=20) as client:
        up = client.post("/api/v1/attachments",
                         files={"file": ("IMG_4821.HEIC", heic, "image/heic")})
        assert up.status_code == 201, up.text
        att = up.json()["attachment_id"]
        r = client.post("/api/v1/reports", json={
            "category": "fire_explosion", "description": "Khói bốc lên từ tầng 3",
            "location": {"lat": AWAY[0], "lon": AWAY[1]},
            "attachments": [att]})
        assert r.status_code == 202, r.text
    iid = r.json()["incident_id"]
    live_server.wait_for_incident(iid)
    page = sign_in(desktop().new_page(), "operator1", "/console")
    errors = watch_errors(page)
    page.goto(f"{NEWEST}&selected={iid}")
    img = page.locator("#detail .media img")
    expect(img).to_have_count(1)
    expect(img).to_have_attribute("src", f"/api/v1/attachments/{att}/thumbnail")
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=15_000)
    size = img.evaluate("el => [el.naturalWidth, el.naturalHeight]")
    assert size == [160, 320], size  # oriented by its EXIF: portrait
    expect(page.locator("#detail .media a.original")).to_have_attribute(
        "href", f"/api/v1/attachments/{att}/content")
    preview = page.locator("#detail .media .tile > a").get_attribute("href")
    assert preview == f"/api/v1/attachments/{att}/preview"
    page.locator("#detail").screenshot(path=artifacts_dir / "staff-heic-photo.png")
    assert not [e for e in errors if "attachments" in e], errors
