"""The supervisor's statistics section shows the figures GET /stats gives for the same
days (tests/stats_seed.py: known figures, spam and the like counted apart), with each SLA
step red below its target and the target beside it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session

from schema import words
from tests import stats_seed
from tests.stats_seed import EXPECTED, WEB_DAY
from tests.web.conftest import LiveServer
from tests.web.steps import bearer, sign_in, watch_errors
from web.templating import fmt_duration

RED, GREEN = "rgb(176, 0, 32)", "rgb(27, 94, 32)"  # staff.css --err, --ok


def _api(live_server: LiveServer, headers: dict[str, str], **params: Any) -> Any:
    start, end = stats_seed.period(WEB_DAY)
    r = httpx.get(f"{live_server.url}/api/v1/stats", headers=headers, params={
        "from": start.isoformat(), "to": end.isoformat(), **params})
    assert r.status_code == 200, r.text
    return r.json()


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def test_stats_section_matches_the_api(
    desktop: Callable[..., BrowserContext], live_server: LiveServer, staff: dict[str, Any],
    artifacts_dir: Path,
) -> None:
    with Session(live_server.engine) as session:
        session.add_all(stats_seed.rows(WEB_DAY))
        session.commit()
    headers = bearer(live_server.url, "supervisor1")
    api = _api(live_server, headers)
    total = api["total"]
    assert (total["count"], total["set_apart"]) == (EXPECTED["count"], EXPECTED["set_apart"])
    target = api["sla_target"]

    page = sign_in(desktop().new_page(), "supervisor1", "/console")
    errors = watch_errors(page)
    day = WEB_DAY.date()
    page.goto(f"{live_server.url}/supervisor?from={day}&to={day + timedelta(days=1)}")
    expect(page.locator("#n-total")).to_have_text(str(total["count"]))
    expect(page.locator("#n-open")).to_have_text(str(total["open"]))
    for kind, n in total["set_apart"].items():
        expect(page.locator(f"#apart-{kind}")).to_have_text(str(n))
    tiles = {"n-sla": (total["sla_compliance"], total["sla_met"], total["count"])}
    tiles |= {f"sla-{step}": (s["compliance"], s["met"], s["n"])
              for step, s in total["sla"].items()}
    for tile, (compliance, met, n) in tiles.items():
        box = page.locator(f"#{tile}")
        expect(box.locator(".n")).to_have_text(_pct(compliance))
        expect(box.locator(".target")).to_contain_text(f"≥ {_pct(target)}")
        expect(box.locator(".of")).to_have_text(f"{met}/{n}")
        expect(box.locator(".n")).to_have_css("color", GREEN if compliance >= target else RED)
    # 0.5, 0.6, 0.6, 0.4 against 0.9: every figure is below its target, and red.
    expect(page.locator(".big-num.sla.bad")).to_have_count(4)
    for key, name in (("ack", "to_acknowledge"), ("scene", "to_on_scene"),
                      ("close", "to_close")):
        box, p = page.locator(f"#time-{key}"), total[name]
        expect(box.locator(".p50")).to_have_text(fmt_duration(p["p50_s"]))
        expect(box.locator(".p90")).to_have_text(fmt_duration(p["p90_s"]))
        expect(box.locator(".count")).to_have_text(str(p["n"]))

    def chart(box: str) -> dict[str, int]:
        bars = page.locator(f"#{box} rect.bar title").all_text_contents()
        return {t.rsplit(": ", 1)[0]: int(t.rsplit(": ", 1)[1]) for t in bars}
    by_cat = {g["key"]: g["count"] for g in _api(live_server, headers,
                                                 group_by="category")["groups"]}
    assert by_cat == EXPECTED["category"]
    assert chart("chart-category") == {words.t("vi", f"cat.{k}"): n for k, n in by_cat.items()}
    by_ward = {g["label"]: g["count"] for g in _api(live_server, headers,
                                                    group_by="ward")["groups"]}
    assert chart("chart-ward") == by_ward
    by_day = {g["key"]: g["count"] for g in _api(live_server, headers,
                                                 group_by="weekday")["groups"]}
    assert by_day == EXPECTED["weekday"]
    assert chart("chart-weekday") == {"Thứ Hai": 5, "Thứ Ba": 1, "Thứ Tư": 0, "Thứ Năm": 0,
                                      "Thứ Sáu": 0, "Thứ Bảy": 0, "Chủ Nhật": 0}
    hours = page.locator("#chart-hour rect.bar title").all_text_contents()
    by_hour = {g["key"]: g["count"] for g in _api(live_server, headers,
                                                  group_by="hour")["groups"] if g["count"]}
    assert {str(int(t[:2])): int(t.split("— ")[1]) for t in hours
            if not t.endswith("— 0")} == by_hour == EXPECTED["hour"]
    page.locator(".stats-col").screenshot(path=artifacts_dir / "staff-supervisor-stats.png")

    # At a target of 40% every figure meets it (2/5 is exactly 40%): green, no marker.
    live_server.settings.sla_target = 0.4
    try:
        page.reload()
        expect(page.locator(".big-num.sla.good")).to_have_count(4)
        expect(page.locator("#sla-close .n")).to_have_css("color", GREEN)
        expect(page.locator("#sla-close .target")).to_have_text("mục tiêu ≥ 40%")
        page.locator("#sla-steps").screenshot(
            path=artifacts_dir / "staff-supervisor-stats-met.png")
    finally:
        live_server.settings.sla_target = target
    assert errors == [], errors
