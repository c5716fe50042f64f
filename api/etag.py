"""Case versions on the wire: GET /incidents/{id} answers `ETag: "v7"` and an action sent
with `If-Match: "v7"` is refused (412) by the workflow once the case has moved on (RFC 9110
§13.1.1). The version rises on every change of state or assignment (schema.payloads
IncidentState.version), not on notes, so a note never makes another person's view stale.
"""

from __future__ import annotations

import re

from api.errors import ApiError
from schema import words

_TAG = re.compile(r'^\s*(?:W/)?"v(\d{1,9})"\s*$')


def etag(version: int) -> str:
    """The ETag of a case version (`"v7"`)."""
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header names; None without one (or with `*`). 422 when it
    is not one of our ETags."""
    if if_match is None or if_match.strip() in ("", "*"):
        return None
    found = _TAG.match(if_match)
    if found is None:
        raise ApiError(422, "validation_error", *words.both("error.validation_error.if_match"),
                       fields=[])
    return int(found.group(1))
