"""Steps the browser tests share: watching a page for errors, signing staff in, acting and
reporting through the API, and filling the citizen's report form.

The API helpers take the live server's base URL and assert the status they expect; the
page helpers take a Playwright page whose context has the live server as base_url.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.web.conftest import DEMO_PASSWORD, HERE, tiny_png

# Where a sent report lands: its tracking page.
TRACKING_PAGE = re.compile(r"/t/[\w-]+$")


def watch_errors(page: Page, failed_requests: bool = False) -> list[str]:
    """A list that collects the page's uncaught exceptions and console errors from now on
    (and, with `failed_requests`, every answer of status 400 or more)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda m: errors.append(f"console: {m.text} {m.location}")
            if m.type == "error" else None)
    if failed_requests:
        page.on("response", lambda r: errors.append(f"http {r.status} {r.url}")
                if r.status >= 400 else None)
    return errors


# The console newest first: tests that follow one fresh report find it on the first page
# however many open (and overdue) incidents earlier tests left; the default urgency order
# is tested in test_console_queue.py.
NEWEST = "/console?sort=newest"


def sign_in(page: Page, username: str, lands_on: str, password: str = DEMO_PASSWORD) -> Page:
    """Sign `page` in through the login form and wait until it lands on the path `lands_on`
    (the role's home: /console, /officer); returns the page."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-btn")
    page.wait_for_url(re.compile(re.escape(lands_on) + "$"))
    return page


def bearer(url: str, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Authorization headers of `username` for the API at `url` (POST /api/v1/auth/token)."""
    r = httpx.post(f"{url}/api/v1/auth/token", data={"username": username, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def act(url: str, headers: dict[str, str], incident_id: str, action: str,
        body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST an action on the incident through the API; asserts 200 and returns the answer."""
    r = httpx.post(f"{url}/api/v1/incidents/{incident_id}/actions/{action}",
                   json=body or {}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def post_report(url: str, description: str, category: str = "crime",
                accuracy_m: float | None = 30, **extra: Any) -> dict[str, Any]:
    """POST /api/v1/reports at HERE (accuracy `accuracy_m` metres, none if None; `extra`:
    more fields of the body); asserts 202 and returns the answer (incident_id,
    tracking_code, tracking_token)."""
    location: dict[str, Any] = {"lat": HERE["latitude"], "lon": HERE["longitude"]}
    if accuracy_m is not None:
        location["accuracy_m"] = accuracy_m
    r = httpx.post(f"{url}/api/v1/reports", timeout=20, json={
        "category": category, "description": description, "location": location, **extra})
    assert r.status_code == 202, r.text
    return r.json()


def upload_png(url: str, name: str = "a.png", headers: dict[str, str] | None = None) -> str:
    """POST tiny_png() to /api/v1/attachments (as staff with `headers`, else as a citizen);
    asserts 201 and returns the attachment id."""
    r = httpx.post(f"{url}/api/v1/attachments", headers=headers or {},
                   files={"file": (name, tiny_png(), "image/png")}, timeout=20)
    assert r.status_code == 201, r.text
    return r.json()["attachment_id"]


def png_file(name: str) -> dict[str, Any]:
    """tiny_png() as a file for Page.set_input_files."""
    return {"name": name, "mimeType": "image/png", "buffer": tiny_png()}


def fill_report(page: Page, category: str, description: str) -> None:
    """On the report page: pick `category` (e.g. "crime") and type `description`."""
    page.locator(f"label.cat-{category}").click()
    page.fill("#description", description)


def open_report_form(page: Page, category: str, description: str) -> None:
    """Open the report page, wait for the phone's position ("sai số …") and fill the form."""
    page.goto("/")
    expect(page.locator("#loc-status")).to_contain_text("sai số")
    fill_report(page, category, description)


def send_report_form(page: Page) -> None:
    """Press Send and wait for the report's tracking page."""
    page.click("#send")
    page.wait_for_url(TRACKING_PAGE)
