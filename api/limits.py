"""Limits on what a citizen may add to a report (`POST /track/{token}/info`), per tracking
token, so that nobody holding a link can flood an incident or its workflow history:

- at most CANHBAO_INFO_PER_HOUR additions (default 20) in any hour; past it, 429 with
  `Retry-After` (seconds until the oldest addition of the hour leaves the window);
- at most CANHBAO_INFO_TEXT_BUDGET characters of text (default 50,000) over the report's
  life; past it, 429 without `Retry-After` (waiting does not help; photos without text
  are still taken, and the message says so). Each text holds at most MAX_TEXT (5,000)
  characters (422 beyond, from the request model or `check_text`).

Counts are rows of `citizen_additions`, written in the same transaction that checks them
under a lock on the report's row, so concurrent requests on several API processes cannot
both slip under a limit. An addition that then fails (closed report, engine down) is
taken back with `release`, so a refusal never uses up the citizen's allowance.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import col

from api import wording
from api.errors import ApiError
from core.db import Database
from core.settings import Settings
from schema import words
from schema.reports import MAX_TEXT
from schema.tables import CitizenAddition, Report, utcnow

WINDOW = timedelta(hours=1)


class AdditionLimited(ApiError):
    """429: this tracking token added too much (`kind`: "hourly" or "text_budget")."""

    def __init__(self, kind: str, vi: str, en: str, retry_after_s: int | None) -> None:
        headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
        super().__init__(429, "too_many_additions" if kind == "hourly" else "text_budget_used",
                         vi, en, headers=headers)
        self.kind = kind
        self.retry_after_s = retry_after_s


def _hourly(limit: int, retry_after_s: int) -> AdditionLimited:
    vi, en = wording.wait_words(max(1, math.ceil(retry_after_s / 60)), "minute")
    return AdditionLimited(
        "hourly", words.t("vi", "error.too_many_additions", limit=limit, wait=vi),
        words.t("en", "error.too_many_additions", limit=limit, wait=en), retry_after_s)


def _budget(budget: int, left: int) -> AdditionLimited:
    vi, en = (words.both("error.text_budget_used.left", left=left) if left > 0
              else words.both("error.text_budget_used", budget=budget))
    return AdditionLimited("text_budget", vi, en, None)


def check_text(text: str | None) -> None:
    """422 for a text longer than MAX_TEXT (forms that do not go through the model)."""
    if text and len(text) > MAX_TEXT:
        vi, en = words.both("field.text.too_long", max=MAX_TEXT)
        raise ApiError(422, "validation_error", *words.both("error.validation_error"),
                       fields=[{"field": "text", "message": vi, "message_en": en}])


async def reserve(db: Database, settings: Settings, report_id: str, text: str | None,
                  now: datetime | None = None, answer: bool = False) -> int:
    """Count one addition of `text` to the report, or raise AdditionLimited (429). Returns
    the id to `release` if the addition does not happen after all. `answer`: the first
    answer to a staff question, which is counted but never refused: when the police ask,
    the reporter can always reply (each question opens room for one answer of at most
    MAX_TEXT characters, so the history stays bounded by what staff ask)."""
    now = now or utcnow()
    chars = len(text or "")
    async with db.session() as s:
        # Serialise additions to one report (PostgreSQL row lock; SQLite has one writer).
        await s.execute(select(col(Report.id)).where(col(Report.id) == report_id)
                        .with_for_update())
        count, oldest = (await s.execute(
            select(func.count(), func.min(col(CitizenAddition.at))).where(
                col(CitizenAddition.report_id) == report_id,
                col(CitizenAddition.at) > now - WINDOW))).one()
        if answer:
            pass
        elif count >= settings.info_per_hour and oldest is not None:
            wait = (oldest + WINDOW - now).total_seconds()
            raise _hourly(settings.info_per_hour, max(1, math.ceil(wait)))
        if chars and not answer:
            used = (await s.execute(
                select(func.coalesce(func.sum(col(CitizenAddition.chars)), 0))
                .where(col(CitizenAddition.report_id) == report_id))).scalar_one()
            if used + chars > settings.info_text_budget:
                raise _budget(settings.info_text_budget, settings.info_text_budget - used)
        row = CitizenAddition(report_id=report_id, at=now, chars=chars)
        s.add(row)
        await s.flush()
        addition_id = int(row.id or 0)
        await s.commit()
        return addition_id


async def release(db: Database, addition_id: int) -> None:
    """Take back a reserved addition that did not happen."""
    async with db.session() as s:
        await s.execute(delete(CitizenAddition).where(col(CitizenAddition.id) == addition_id))
        await s.commit()
