"""Identifiers shared by the workflow and its callers."""

from __future__ import annotations

import secrets


def workflow_id(incident_id: str) -> str:
    """The Temporal workflow id of an incident: `incident-<uuid>`."""
    return f"incident-{incident_id}"


# Tracking codes a citizen reads out on the phone. No look-alikes: no 0/O/Q/D-ish pairs,
# no 1/I/L, 2/Z, 5/S, 8/B.
TRACKING_ALPHABET = "ACEFGHJKMNPRTUVWXY34679"
TRACKING_LENGTH = 8
# Drawn without the database (intake while it is unreachable: api/services/submission.py),
# so no collision can be checked when it is drawn: two characters more (23^10 ≈ 4·10^13
# codes) and never equal to a checked 8-character code. A collision left for the
# projection (activities/projection.py) is re-drawn there.
UNCHECKED_TRACKING_LENGTH = 10


def make_tracking_code(length: int = TRACKING_LENGTH) -> str:
    """A random tracking code of `length` characters of TRACKING_ALPHABET."""
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(length))
