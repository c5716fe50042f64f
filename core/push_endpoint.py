"""One reading of a Web Push endpoint, for checking it and for sending to it.

A subscription's endpoint is a URL the worker will POST to, so whoever subscribes chooses a
host for the worker to connect to. The check and the sending library must therefore agree
on what that host is. They did not: `urllib.parse.urlsplit` reads the host of
`https://127.0.0.1\\.push.apple.com/x` as `127.0.0.1\\.push.apple.com` (which ends in an
allowed `*.push.apple.com`) while urllib3, under pywebpush, ends the host at the backslash
and connects to 127.0.0.1 (issue #20). So an endpoint is read here once, by a grammar
strict enough that every URL library reads the same host from it, and the URL the worker
sends to is rebuilt from the parts this reading approved, never taken as it came.

Grammar (RFC 3986 with less allowed; `fullmatch` on the whole string):

    scheme "://" host [":" port] path ["?" query]

- scheme: `https` (or `http` for a test origin only), any case, lower-cased;
- host: letters, digits, `.` and `-` only (no percent-escapes, backslash, `;`, `@`,
  brackets or non-ASCII: an IDN must come as its `xn--` form), lower-cased; dot-separated
  labels of 1–63 characters that neither start nor end with `-`, 253 characters at most,
  no trailing dot;
- port: 1–5 digits;
- path: `/` then RFC 3986 path characters (unreserved, sub-delims, `:`, `@`, `/`,
  percent-escapes);
- query: the same characters plus `?`; no fragment.

Then the policy (`check_endpoint`): an origin listed in CANHBAO_PUSH_TEST_ORIGINS (a test
stand-in) is taken as it is; anything else must be https on port 443 to a host named in
CANHBAO_PUSH_SERVICE_HOSTS that is neither an address literal nor a local name.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

from core.settings import Settings

_PATH_CHARS = r"A-Za-z0-9\-._~!$&'()*+,;=:@%/"
_ENDPOINT = re.compile(
    rf"(?P<scheme>[A-Za-z]+)://(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{{1,5}}))?"
    rf"(?P<path>/[{_PATH_CHARS}]*)(?:\?(?P<query>[{_PATH_CHARS}?]*))?",
    re.ASCII)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a `%` not starting an escape
_LOCAL_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa")
MAX_HOST = 253


class Refusal(StrEnum):
    """Why an endpoint is refused: not a URL of the grammar above, not https, or not a
    browser push service the worker may send to."""

    INVALID = "invalid"
    NOT_HTTPS = "not_https"
    NOT_PUSH_SERVICE = "not_push_service"


class EndpointRefused(ValueError):
    """An endpoint the worker may not send to; `reason` says why."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class PushEndpoint:
    """An endpoint as read by the grammar: scheme and host lower case, port None when
    absent, path and query as given (query None when absent)."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str | None

    @property
    def origin(self) -> str:
        """`scheme://host[:port]`, as CANHBAO_PUSH_TEST_ORIGINS lists origins."""
        return f"{self.scheme}://{self.host}" + (f":{self.port}" if self.port else "")

    @property
    def url(self) -> str:
        """The URL to send to, built from these parts only (an https port 443 is left
        out, as browsers give it)."""
        origin = self.origin if not (self.scheme == "https" and self.port == 443) \
            else f"https://{self.host}"
        return origin + self.path + (f"?{self.query}" if self.query is not None else "")


def parse_endpoint(raw: str) -> PushEndpoint:
    """Read `raw` (surrounding white space ignored) by the grammar of the module
    docstring. Raises EndpointRefused(INVALID) for anything else."""
    match = _ENDPOINT.fullmatch(raw.strip())
    if match is None:
        raise EndpointRefused(Refusal.INVALID)
    host = match["host"].lower()
    labels = host.split(".")
    port = int(match["port"]) if match["port"] else None
    if len(host) > MAX_HOST or not all(_LABEL.fullmatch(label) for label in labels) \
            or (port is not None and not 0 < port < 65536) \
            or _PERCENT.search(match["path"] + (match["query"] or "")):
        raise EndpointRefused(Refusal.INVALID)
    return PushEndpoint(scheme=match["scheme"].lower(), host=host, port=port,
                        path=match["path"], query=match["query"])


def _is_address_or_local(host: str) -> bool:
    """An IP literal in any spelling a resolver takes (`127.1`, `0x7f.1`, `2130706433`
    all end in a label a real domain never has: numeric or hex-like), or a local name."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    last = host.rsplit(".", 1)[-1]
    return ("." not in host or host == "localhost" or host.endswith(_LOCAL_SUFFIXES)
            or last.isdigit() or last.startswith("0x"))


def check_endpoint(settings: Settings, raw: str) -> PushEndpoint:
    """The endpoint as it will be sent to, if the worker may send to it (module
    docstring); else EndpointRefused with the reason. Used when a subscription is made
    and again by the worker just before each send."""
    endpoint = parse_endpoint(raw)
    if endpoint.origin in settings.push_test_origin_set:
        return endpoint
    if endpoint.scheme != "https":
        raise EndpointRefused(Refusal.NOT_HTTPS)
    if endpoint.port not in (None, 443) or _is_address_or_local(endpoint.host) \
            or not settings.is_push_service(endpoint.host):
        raise EndpointRefused(Refusal.NOT_PUSH_SERVICE)
    return endpoint
