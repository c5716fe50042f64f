"""Repeating a request tells the truth: the same `report_id` (a report) or the same
`Idempotency-Key` (a staff action) with the same request gets the first answer; with
another request it gets 409 and nothing else (as payment APIs do). One fingerprint rule
for both: the sha256 of the request's canonical JSON.

A report id is no secret (staff and Open311 clients see incident ids), so the first answer
(which holds the citizen's tracking token) is given only to a request that proves it is
the same report: the sha256 of its canonical form equals the one stored with the report.

The canonical form is the validated body without `report_id`, keys sorted, and the photos
by their content (sha256 of the bytes, sorted) rather than by attachment id: the no-JS
form uploads its files again on every post, and the same photo twice is the same report.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from api.errors import ApiError
from core.db import Database
from schema import words
from schema.tables import Attachment, Report


class KeyReused(ApiError):
    """409: this Idempotency-Key was used for another request (another body, action,
    If-Match or user). Says nothing else."""

    def __init__(self) -> None:
        super().__init__(409, "idempotency_key_reused",
                         *words.both("error.idempotency_key_reused"))


class ReportIdReused(ApiError):
    """409: this `report_id` belongs to a report with another body. Says nothing else."""

    def __init__(self) -> None:
        super().__init__(409, "report_id_conflict", *words.both("error.report_id_conflict"))


def _digest(canonical: dict[str, Any]) -> str:
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(fields: dict[str, Any], attachment_hashes: list[str]) -> str:
    """sha256 (hex) of the canonical request: `fields` (JSON-ready, report_id left out)
    and the attachments' content hashes, order-free."""
    canonical = {k: v for k, v in fields.items() if k not in ("report_id", "attachments")}
    canonical["attachments"] = sorted(attachment_hashes)
    return _digest(canonical)


def action_fingerprint(username: str, action: str, body: dict[str, Any],
                       expected_version: int | None) -> str:
    """sha256 (hex) of a staff action request: who, which action, the validated body
    (JSON-ready) and the If-Match version. The incident and the key are the receipt's
    address, not part of the print."""
    return _digest({"user": username, "action": action, "body": body,
                    "if_match": expected_version})


def check_action(stored_fingerprint: str, fp: str) -> None:
    """Raise KeyReused unless the stored receipt was made by a request with print `fp`."""
    if stored_fingerprint != fp:
        raise KeyReused()


async def report_fingerprint(db: Database, fields: dict[str, Any],
                             attachment_ids: list[str]) -> str:
    """The fingerprint of a report body; attachment ids are looked up for their content
    hash (an unknown id stands for itself, so it never matches a stored photo)."""
    hashes: dict[str, str] = {}
    if attachment_ids:
        async with db.session() as s:
            rows = await s.execute(select(col(Attachment.id), col(Attachment.sha256))
                                   .where(col(Attachment.id).in_(attachment_ids)))
            hashes = {row[0]: row[1] for row in rows}
    return fingerprint(fields, [hashes.get(a, f"unknown:{a}") for a in attachment_ids])


def check_same(existing: Report, fp: str) -> None:
    """Raise ReportIdReused unless `existing` was stored from a request with print `fp`
    (a report stored before fingerprints existed never matches)."""
    if existing.fingerprint is None or existing.fingerprint != fp:
        raise ReportIdReused()
