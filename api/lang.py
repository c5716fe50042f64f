"""The one language negotiation for pages and API answers: Vietnamese or English.

The page's language switch (`?lang=`) wins, then the `lang` cookie it sets, then the
Accept-Language header by q-value (q=0 means "not this one"; equal q: the first listed).
Vietnamese when nothing decides.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
COOKIE = "lang"


def from_header(header: str) -> str | None:
    """The best of vi/en in an Accept-Language value, or None when it names neither."""
    best: str | None = None
    best_q = 0.0
    for part in header.split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        primary = tag.lower().split("-")[0]
        if primary in LANGS and q > best_q:
            best, best_q = primary, q
    return best


def negotiate(request: HTTPConnection) -> tuple[str, bool]:
    """The language and whether it came from `?lang=` (the page then sets the cookie)."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked, True
    cookie = request.cookies.get(COOKIE)
    if cookie in LANGS:
        return cookie, False
    return from_header(request.headers.get("accept-language", "")) or DEFAULT_LANG, False
