"""Resubmitting a report tells the truth: the same `report_id` with the same body gets the
first answer; with another body it gets 409 and nothing else (as payment APIs do).

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
from schema.tables import Attachment, Report


class ReportIdReused(ApiError):
    """409: this `report_id` belongs to a report with another body. Says nothing else."""

    def __init__(self) -> None:
        super().__init__(
            409, "report_id_conflict",
            "Mã tin báo (report_id) này đã được dùng cho một tin báo khác. "
            "Hãy gửi lại với mã mới.",
            "This report_id was already used for a different report. "
            "Send it again with a new id.")


def fingerprint(fields: dict[str, Any], attachment_hashes: list[str]) -> str:
    """sha256 (hex) of the canonical request: `fields` (JSON-ready, report_id left out)
    and the attachments' content hashes, order-free."""
    canonical = {k: v for k, v in fields.items() if k not in ("report_id", "attachments")}
    canonical["attachments"] = sorted(attachment_hashes)
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
