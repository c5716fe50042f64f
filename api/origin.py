"""Same-origin rules: where a sign-in may come from and where it may send the browser.

- `refuse_cross_site(request)`: a browser that says the request comes from another site
  (`Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is not ours) gets
  403. Clients that are not browsers send neither header and pass: without a browser
  there is no victim whose cookies a forged request could use.
- `safe_next(value)`: a `next` target is kept only when it is a path on this site. Anything
  a browser could read as another host is refused: `//host`, `/\\host`, their
  percent-encoded forms (`/%2F`, `/%5C`, even double-encoded), schemes, control
  characters (browsers drop tabs and newlines, so `/\\t/host` means `//host`).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from fastapi import Request

from api.errors import ApiError
from api.infra import infra_of
from schema import words

_SAME = ("same-origin", "none")


class CrossSiteRequest(ApiError):
    def __init__(self) -> None:
        super().__init__(403, "cross_site", *words.both("error.cross_site"))


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def is_cross_site(request: Request) -> bool:
    """True when the browser tells us this request was made by another site's page."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in _SAME
    origin = request.headers.get("origin")
    if origin is None:
        return False
    ours = {request.headers.get("host", "").lower()}
    public_url = infra_of(request.app).settings.public_url
    if public_url:
        ours.add(_netloc(public_url))
    # "null" (sandboxed frames, some redirects) has no host: refused.
    return _netloc(origin) not in ours - {""}


def is_same_origin(request: Request) -> bool:
    """True only when the browser says this request comes from one of our own pages
    (`Sec-Fetch-Site: same-origin`, or without it an `Origin` that is ours). A client that
    sends neither is not known to be same-origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() == "same-origin"
    return request.headers.get("origin") is not None and not is_cross_site(request)


def refuse_cross_site(request: Request) -> None:
    """Raise CrossSiteRequest (403) for a request another site's page made."""
    if is_cross_site(request):
        raise CrossSiteRequest()


def safe_next(value: str | None) -> str | None:
    """`value` when it is a same-origin path (and query), else None."""
    if not value or len(value) > 2000:
        return None
    decoded = value
    for _ in range(4):  # percent-decoding until nothing changes, a few layers deep
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    else:
        return None
    for text in (value, decoded):
        if not text.startswith("/") or text[1:2] in ("/", "\\"):
            return None
        if "\\" in text or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            return None
        try:
            parts = urlsplit(text)
        except ValueError:
            return None
        if parts.scheme or parts.netloc:
            return None
    return value
