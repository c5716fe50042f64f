"""What a browser page shows for a 503 (the database or the workflow service is down).

The API answers errors as JSON (api/errors.py). For a browser asking for a page (not
`/api/…`, `Accept: text/html`, not an HTMX partial) that JSON is useless: `error_page`
answers a small page instead, in the page's language (web/i18n.py), with the same status
and Retry-After, a reload after that many seconds (`<meta http-equiv="refresh">`: no script
needed) and the 113/114/115 call buttons of the citizen layout. The composition root
(app.py) hands it to api.main.create_api as `error_page`; this is the one place the rule
lives.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api import wording
from api.errors import ApiError
from web import i18n
from web.templating import render

STAFF_PAGES = ("/console", "/supervisor", "/officer", "/login", "/logout")
DEFAULT_RETRY_S = 5


def is_page_request(request: Request) -> bool:
    """A browser asking for a page: GET or a form POST, not the API, not HTMX, HTML
    accepted."""
    path = request.url.path
    if path.startswith(("/api/", "/open311/", "/static/")) or path == "/api":
        return False
    if request.headers.get("hx-request") == "true":
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, exc: ApiError) -> Response | None:
    """The HTML answer for `exc` when it is a 503 and `request` is a page request, else
    None (the caller answers JSON)."""
    if exc.status != 503 or not is_page_request(request):
        return None
    headers = dict(exc.headers or {})
    try:
        retry_s = max(1, int(headers.get("Retry-After", DEFAULT_RETRY_S)))
    except ValueError:
        retry_s = DEFAULT_RETRY_S
    headers["Retry-After"] = str(retry_s)
    lang = i18n.negotiate(request)[0]
    staff = request.url.path.startswith(STAFF_PAGES)
    vi, en = wording.wait_words(retry_s)
    text = i18n.t(lang, "down.staff" if staff else "down.citizen",
                  wait=en if lang == "en" else vi)
    # The same page again; a form POST is not sent again: back to its form.
    if request.method == "GET":
        query = request.url.query
        again = request.url.path + (f"?{query}" if query else "")
    else:
        again = "/login" if request.url.path.startswith("/login") else "/"
    response = render(request, "unavailable.html",
                      {"text": text, "retry_s": retry_s, "again": again}, status_code=503)
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"
    return response
