"""Two-way contact in the browser (issue #11, 2 and 6): an operator asks from the console,
the question appears at the top of the reporter's tracking page (a phone, no account), a
half-typed answer survives the page's refresh, the answer is sent and appears in the
console without a reload, marked as new. Without JavaScript the answer form still works.

Screenshots go to test-artifacts/msg-*.png.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from core import seed
from tests.web.conftest import DEMO_PASSWORD, LiveServer
from tests.web.steps import NEWEST, act, bearer, post_report, sign_in, watch_errors

pytestmark = pytest.mark.browser

QUESTION = "Anh/chị có thấy biển số xe không?"
# Waits on the server (an update through the workflow, the live feed): generous, as the
# shared test machine can be slow; nothing here measures speed.
SLOW = 30_000


def _report(url: str) -> dict[str, Any]:
    return post_report(url, f"Xe máy tông người đi bộ rồi bỏ chạy {uuid.uuid4().hex[:6]}",
                       "traffic_accident", accuracy_m=20)


def _refreshed(page: Page) -> None:
    """Run the tracking page's own refresh now (instead of waiting 15 s) and wait until
    htmx has handled the answer (swapped in, or not when the page holds it back)."""
    page.evaluate("""() => new Promise((done, fail) => {
        document.body.addEventListener('htmx:afterOnLoad', () => setTimeout(done, 100),
                                       {once: true});
        setTimeout(() => fail(new Error('no refresh answer in 20 s')), 20000);
        htmx.trigger('#status', 'refresh');
    })""")


def test_a_staff_question_appears_on_the_tracking_page_and_the_answer_in_the_console(
    desktop: Callable[..., BrowserContext], phone: Callable[..., BrowserContext],
    live_server: LiveServer, artifacts_dir: Path,
) -> None:
    seed.ensure_demo_users(live_server.engine, DEMO_PASSWORD)
    accepted = _report(live_server.url)
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    live_server.wait_for_incident(iid, located=True)

    # --- the operator asks from the console, with a ready phrase ---
    op = desktop().new_page()
    op_errors = watch_errors(op)
    sign_in(op, "operator1", "/console")
    op.goto(f"{NEWEST}&selected={iid}")
    expect(op.locator("#live")).to_have_attribute("data-state", "on")
    op.evaluate("window.__sameDocument = true")
    detail = op.locator("#detail")
    ask = detail.locator(".act-message")
    expect(ask.locator("legend")).to_have_text("Hỏi người báo tin", timeout=SLOW)
    ask.get_by_role("button", name=QUESTION).click()
    expect(ask.locator("#msg-text")).to_have_value(QUESTION)  # to edit or send
    ask.locator("#btn-message").click()
    expect(op.locator("#toasts")).to_contain_text("Đã gửi cho người báo tin.", timeout=SLOW)
    asked = detail.locator("#d-timeline li.ev-message")
    expect(asked).to_have_count(1, timeout=SLOW)
    expect(asked).to_contain_text(QUESTION)
    expect(asked.locator(".waiting")).to_have_text("chưa trả lời")
    expect(detail.locator(".d-head .state")).to_have_text("Mới nhận")  # no state change

    # --- the reporter's phone: the question first, with an answer box ---
    citizen = phone().new_page()
    c_errors = watch_errors(citizen)
    citizen.goto(f"/t/{token}")
    expect(citizen.locator(".question")).to_have_count(1)
    seq = citizen.locator(".question").get_attribute("data-seq")
    question = citizen.locator(f"#question-{seq}")
    expect(question.locator(".q-from")).to_contain_text("Trung tâm chỉ huy hỏi bạn")
    expect(question.locator(".q-text")).to_have_text(QUESTION)
    box = question.locator("textarea")
    # Highlighted above the code and the steps.
    assert citizen.evaluate("""() => document.querySelector('.question').getBoundingClientRect().top
        < document.querySelector('#tracking-code').getBoundingClientRect().top""")
    assert citizen.evaluate("document.documentElement.scrollWidth") <= 360
    citizen.screenshot(path=artifacts_dir / "msg-tracking-question.png", full_page=True)

    # A half-typed answer survives the refresh, also when a new message arrives meanwhile.
    box.fill("Có, biển số 59X1")
    citizen.locator("h1").click()  # the box loses focus: the refresh is free to swap
    act(live_server.url, bearer(live_server.url, "operator1"), iid, "message",
        {"text": "Anh/chị có an toàn không?"})
    _refreshed(citizen)
    expect(citizen.locator(".question")).to_have_count(2, timeout=SLOW)
    expect(citizen.locator(".question").first.locator(".q-text")).to_have_text(
        "Anh/chị có an toàn không?")  # the newest first
    expect(box).to_have_value("Có, biển số 59X1")
    box.click()
    box.press("End")
    box.type("-234.56, xe Wave màu đỏ")
    _refreshed(citizen)  # while typing (focus in the box): nothing is swapped over it
    expect(box).to_have_value("Có, biển số 59X1-234.56, xe Wave màu đỏ")
    expect(box).to_be_focused()

    question.locator(".answer-send").click()
    expect(citizen.locator("#answer-sent")).to_be_visible(timeout=SLOW)
    # The answered one leaves the top.
    expect(citizen.locator(".question")).to_have_count(1, timeout=SLOW)
    story = citizen.locator("#timeline")
    expect(story.locator("li.ev-reply")).to_contain_text("Bạn đã trả lời:")
    expect(story.locator("li.ev-reply .quote")).to_have_text(
        "Có, biển số 59X1-234.56, xe Wave màu đỏ")
    expect(story.locator("li.ev-reply .answers")).to_contain_text(QUESTION)
    expect(story.locator("li.ev-message").first).to_contain_text("Trung tâm chỉ huy nhắn bạn:")
    html = citizen.content()
    assert "operator1" not in html and "Trực ban" not in html
    citizen.screenshot(path=artifacts_dir / "msg-tracking-answered.png", full_page=True)

    # --- the console shows the answer without a reload, marked as new ---
    reply = detail.locator("#d-timeline li.ev-reply")
    expect(reply).to_contain_text("Có, biển số 59X1-234.56, xe Wave màu đỏ", timeout=SLOW)
    expect(reply).to_have_class(re.compile(r"\bunread\b"))
    expect(reply.locator(".answer-to")).to_contain_text(QUESTION)
    expect(op.locator("#toasts")).to_contain_text("Người báo tin đã trả lời", timeout=SLOW)
    expect(asked.last.locator(".waiting")).to_have_count(0)  # the first question
    expect(asked.first.locator(".waiting")).to_have_count(1)  # the second: not yet
    assert op.evaluate("window.__sameDocument") is True
    op.locator(".col-detail").evaluate("e => { e.scrollTop = e.scrollHeight; }")
    op.screenshot(path=artifacts_dir / "msg-console-answer.png")
    reply.click()  # read: the marker goes
    expect(reply).not_to_have_class(re.compile(r"\bunread\b"))

    assert op_errors == [], op_errors
    assert c_errors == [], c_errors


def test_answering_works_without_javascript(
    phone: Callable[..., BrowserContext], live_server: LiveServer, artifacts_dir: Path,
) -> None:
    seed.ensure_demo_users(live_server.engine, DEMO_PASSWORD)
    accepted = _report(live_server.url)
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    live_server.wait_for_incident(iid)
    act(live_server.url, bearer(live_server.url, "operator1"), iid, "message",
        {"text": "Hãy rời khỏi khu vực nguy hiểm."})

    page = phone(java_script_enabled=False).new_page()
    page.goto(f"/t/{token}")
    question = page.locator(".question")
    expect(question.locator(".q-text")).to_have_text("Hãy rời khỏi khu vực nguy hiểm.")
    question.locator("textarea").fill("Tôi đã ra đầu hẻm, an toàn")
    question.locator(".answer-send").click()
    page.wait_for_url(re.compile(r"msg=answer"))
    expect(page.locator(".banner.ok").first).to_contain_text("Đã gửi câu trả lời")
    expect(page.locator(".question")).to_have_count(0)
    expect(page.locator("#timeline li.ev-reply .quote")).to_have_text("Tôi đã ra đầu hẻm, an toàn")
    page.screenshot(path=artifacts_dir / "msg-tracking-nojs.png", full_page=True)
    rows = live_server.rows("select action, data from incident_events where incident_id = :i "
                            "and action = 'reply'", i=iid)
    assert len(rows) == 1 and rows[0]["data"]["text"] == "Tôi đã ra đầu hẻm, an toàn"


def test_the_units_officer_asks_from_the_phone_under_the_units_name(
    phone: Callable[..., BrowserContext], live_server: LiveServer, staff: dict[str, Any],
    artifacts_dir: Path,
) -> None:
    accepted = _report(live_server.url)
    iid, token, code = (accepted["incident_id"], accepted["tracking_token"],
                        accepted["tracking_code"])
    live_server.wait_for_incident(iid, located=True)
    headers = bearer(live_server.url, "operator1")
    act(live_server.url, headers, iid, "classify", {"category": "traffic_accident", "priority": 2})
    unit_name = act(live_server.url, headers, iid, "route",
                    {"ward_code": staff["ward"]["code"]})["unit"]["name"]

    officer = phone().new_page()
    errors = watch_errors(officer)
    sign_in(officer, staff["officer"], "/officer")
    card = officer.locator(f"#card-{code}")
    card.locator(".btn-ask").click()
    card.get_by_role("button", name="Hãy rời khỏi khu vực nguy hiểm.").click()
    expect(card.locator(".msg-text")).to_have_value("Hãy rời khỏi khu vực nguy hiểm.")
    officer.screenshot(path=artifacts_dir / "msg-officer-ask.png", full_page=True)
    card.locator(".btn-ask-send").click()
    expect(officer.locator("#toasts")).to_contain_text("Đã gửi cho người báo tin.", timeout=SLOW)
    officer.locator(f"#card-{code} .btn-info").click()
    expect(officer.locator(f"#card-{code} .more-body li.ev-message")).to_contain_text(
        "Hãy rời khỏi khu vực nguy hiểm.")

    citizen = phone().new_page()
    citizen.goto(f"/t/{token}")
    expect(citizen.locator(".question .q-from")).to_contain_text(f"{unit_name} hỏi bạn")
    assert staff["officer"] not in citizen.content()
    assert errors == [], errors
