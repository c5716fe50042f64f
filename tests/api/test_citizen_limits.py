"""Per-token limits on citizen additions (issue #7, 2): N additions an hour and a text
budget over the report's life, counted in SQL (so across API processes); past them 429
with a plain message (and Retry-After for the hourly limit); the tracking page shows why
beside the form and keeps the typed text."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import func, select

from api import limits
from schema.tables import CitizenAddition, utcnow
from tests.api.conftest import Stack

StackMaker = Callable[..., Awaitable[Stack]]


async def _add(stack: Stack, token: str, text: str | None = None,
               attachments: list[str] | None = None, lang: str = "vi"):
    body: dict = {"text": text} if text is not None else {}
    if attachments:
        body["attachments"] = attachments
    return await stack.client.post(f"/api/v1/track/{token}/info", json=body,
                                   headers={"Accept-Language": lang})


async def _rows(stack: Stack, report_id: str) -> int:
    async with stack.infra.db.session() as s:
        return (await s.execute(select(func.count()).select_from(CitizenAddition).where(
            CitizenAddition.report_id == report_id))).scalar_one()


async def test_additions_per_hour(make_stack: StackMaker) -> None:
    stack = await make_stack(CANHBAO_INFO_PER_HOUR=3)
    mine, other = await stack.submit(), await stack.submit()
    token = mine["tracking_token"]
    photo = (await stack.upload("png"))["attachment_id"]
    for r in (await _add(stack, token, "Thêm 1"), await _add(stack, token, "Thêm 2"),
              await _add(stack, token, attachments=[photo])):  # a photo alone counts too
        assert r.status_code == 200, r.text
    r = await _add(stack, token, "Thêm 4")
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "too_many_additions"
    assert "3 lần trong một giờ" in r.json()["detail"] and "113" in r.json()["detail"]
    assert 0 < int(r.headers["retry-after"]) <= 3600
    r = await _add(stack, token, "Thêm 4", lang="en")
    assert "Try again in" in r.json()["detail"]
    # Another report's token is not affected; a refusal was not counted.
    assert (await _add(stack, other["tracking_token"], "Khác")).status_code == 200
    assert await _rows(stack, mine["incident_id"]) == 3
    # An hour after the oldest, one more fits.
    later = utcnow() + timedelta(hours=1, seconds=1)
    await limits.reserve(stack.infra.db, stack.settings, mine["incident_id"], "x",
                         now=later)


async def test_text_budget_over_the_reports_life(make_stack: StackMaker) -> None:
    stack = await make_stack(CANHBAO_INFO_TEXT_BUDGET=12_000)
    token = (await stack.submit())["tracking_token"]
    for _ in range(2):
        assert (await _add(stack, token, "a" * 5000)).status_code == 200
    r = await _add(stack, token, "b" * 5000)
    assert r.status_code == 429 and r.json()["error"] == "text_budget_used"
    assert "retry-after" not in r.headers  # waiting does not help
    assert "còn nhận thêm 2000 ký tự" in r.json()["detail"]
    assert "ảnh" in r.json()["detail"]  # photos are still taken
    assert (await _add(stack, token, "c" * 2000)).status_code == 200
    photo = (await stack.upload("jpeg"))["attachment_id"]
    assert (await _add(stack, token, attachments=[photo])).status_code == 200
    r = await _add(stack, token, "d", lang="en")
    assert r.status_code == 429 and "taken its 12000 characters" in r.json()["detail"]
    # One text holds at most 5,000 characters.
    r = await _add(stack, token, "e" * 5001)
    assert r.status_code == 422


async def test_refused_additions_use_nothing(stack: Stack) -> None:
    accepted = await stack.submit()
    await stack.wait_projected(accepted["incident_id"])
    token = accepted["tracking_token"]
    assert (await stack.client.post(f"/api/v1/track/{token}/cancel", json={})).status_code \
        == 200
    assert (await _add(stack, token, "Sau khi hủy")).status_code == 409
    assert await _rows(stack, accepted["incident_id"]) == 0


async def test_concurrent_additions_and_two_api_processes(make_stack: StackMaker) -> None:
    first = await make_stack(CANHBAO_INFO_PER_HOUR=4)
    second = await make_stack(with_worker=False, CANHBAO_INFO_PER_HOUR=4)  # same database
    accepted = await first.submit()
    token = accepted["tracking_token"]
    answers = await asyncio.gather(
        *(_add(first if i % 2 else second, token, f"Cùng lúc {i}") for i in range(7)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 4 + [429] * 3, [r.text for r in answers]
    assert await _rows(first, accepted["incident_id"]) == 4


async def test_tracking_page_says_why_beside_the_form(make_stack: StackMaker) -> None:
    stack = await make_stack(CANHBAO_INFO_PER_HOUR=1)
    token = (await stack.submit())["tracking_token"]
    r = await stack.client.post(f"/t/{token}/info", data={"text": "Lần đầu"})
    assert r.status_code == 303, r.text
    typed = "Xe máy biển số 59-X1 234.56 chạy về hướng cầu Mống"
    r = await stack.client.post(f"/t/{token}/info", data={"text": typed})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    error = re.search(r'id="err-info" role="alert">([^<]*)<', r.text)
    assert error and "1 lần trong một giờ" in error.group(1)
    assert f">{typed}</textarea>" in r.text
    r = await stack.client.post(f"/t/{token}/info", data={"text": "x" * 5001})
    assert r.status_code == 422 and "5000 ký tự" in r.text
