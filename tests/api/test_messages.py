"""Two-way contact without an account (issue #11, 2): staff ask the reporter from the
incident (`POST /incidents/{id}/actions/message`), the reporter answers through the tracking
link (`POST /track/{token}/info` with `reply_to`). Who may ask follows schema/states.py and
the scope policy; the reporter sees a unit or the command centre, never a staff name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select

from schema.tables import CitizenAddition
from tests.api.conftest import WARD_A, Stack

StackMaker = Callable[..., Awaitable[Stack]]
QUESTION = "Anh/chị có thấy biển số xe không?"


async def _track(stack: Stack, token: str) -> dict[str, Any]:
    r = await stack.client.get(f"/api/v1/track/{token}")
    assert r.status_code == 200, r.text
    return r.json()


async def _answer(stack: Stack, token: str, text: str | None, reply_to: Any,
                  lang: str = "vi") -> Any:
    body: dict[str, Any] = {"reply_to": reply_to}
    if text is not None:
        body["text"] = text
    return await stack.client.post(f"/api/v1/track/{token}/info", json=body,
                                   headers={"Accept-Language": lang})


def _names(stack: Stack, *who: str) -> list[str]:
    """The usernames and display names of staff accounts: none may reach a citizen."""
    out = []
    for w in who:
        user = stack.people.users[w]
        out += [user.username, user.full_name or user.username]
    return out


async def test_operator_asks_and_the_reporter_answers_by_token(stack: Stack) -> None:
    accepted = await stack.submit()
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    await stack.wait_projected(iid)
    before = (await stack.detail(iid)).json()

    r = await stack.act(iid, "message", "operator", {"text": QUESTION})
    assert r.status_code == 200, r.text
    after = r.json()
    # No state change, no new version (nobody's If-Match goes stale).
    assert after["state"] == before["state"] == "received"
    assert after["version"] == before["version"]
    asked = [e for e in after["timeline"] if e["action"] == "message"]
    assert len(asked) == 1 and asked[0]["data"]["text"] == QUESTION
    assert asked[0]["actor"]["username"] == "t.operator"  # staff see who asked
    seq = asked[0]["seq"]
    assert "message" in after["allowed_actions"]

    view = await _track(stack, token)
    assert view["messages"] == [{
        "seq": seq, "at": view["messages"][0]["at"], "text": QUESTION,
        "sender": "Trung tâm chỉ huy", "sender_en": "Command centre", "answered": False,
        "replies": []}]
    line = [e for e in view["timeline"] if e["kind"] == "message"]
    assert line and line[0]["text"] == QUESTION and line[0]["sender"] == "Trung tâm chỉ huy"

    r = await _answer(stack, token, "Có, biển 59X1-234.56", seq)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["messages"][0]["answered"] is True
    assert [x["text"] for x in view["messages"][0]["replies"]] == ["Có, biển 59X1-234.56"]
    assert any(e["kind"] == "reply" and e["reply_to"] == seq for e in view["timeline"])

    d = (await stack.detail(iid)).json()
    reply = [e for e in d["timeline"] if e["action"] == "reply"]
    assert len(reply) == 1 and reply[0]["data"]["reply_to"] == seq
    assert reply[0]["data"]["text"] == "Có, biển 59X1-234.56"
    assert reply[0]["actor"]["role"] == "citizen"
    assert d["state"] == "received"

    # Nothing the reporter can read names a staff member.
    page = await stack.client.get(f"/t/{token}")
    assert page.status_code == 200
    assert QUESTION in page.text and "Có, biển 59X1-234.56" in page.text
    assert "Trung tâm chỉ huy" in page.text
    json_text = (await stack.client.get(f"/api/v1/track/{token}")).text
    for name in _names(stack, "operator"):
        assert name not in page.text and name not in json_text, name


async def test_the_units_officer_asks_under_the_units_name(stack: Stack) -> None:
    accepted = await stack.submit()
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    await stack.wait_projected(iid)
    assert (await stack.act(iid, "classify", "operator",
                            {"category": "crime", "priority": 2})).status_code == 200
    r = await stack.act(iid, "route", "operator",
                        {"ward_code": stack.people.places[WARD_A].code})
    assert r.status_code == 200, r.text
    unit_name = r.json()["unit"]["name"]
    r = await stack.act(iid, "message", "officer_a",
                        {"text": "Hãy rời khỏi khu vực nguy hiểm."})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "routed"
    assert (await stack.act(iid, "message", "supervisor",
                            {"text": "Anh/chị có an toàn không?"})).status_code == 200

    view = await _track(stack, token)
    assert [(m["sender"], m["text"]) for m in view["messages"]] == [
        (unit_name, "Hãy rời khỏi khu vực nguy hiểm."),
        ("Trung tâm chỉ huy", "Anh/chị có an toàn không?")]
    page = (await stack.client.get(f"/t/{token}")).text
    assert unit_name in page and "Hãy rời khỏi khu vực nguy hiểm." in page
    en_page = (await stack.client.get(f"/t/{token}",
                                      headers={"Accept-Language": "en"})).text
    assert "Command centre" in en_page
    for text in (page, en_page, json_text := (await stack.client.get(
            f"/api/v1/track/{token}")).text):
        for name in _names(stack, "officer_a", "supervisor", "operator"):
            assert name not in text, name
    assert json_text


async def test_who_may_not_ask(stack: Stack) -> None:
    iid = await stack.routed(WARD_A)
    # An officer of another unit does not even see the incident (scope policy): 404.
    r = await stack.act(iid, "message", "officer_b", {"text": QUESTION})
    assert r.status_code == 404, r.text
    # An admin account takes no incident actions.
    r = await stack.act(iid, "message", "admin", {"text": QUESTION})
    assert r.status_code == 403, r.text
    assert r.json()["detail"] == "Vai trò quản trị không được phép thực hiện “Hỏi người báo tin”"
    d = (await stack.detail(iid)).json()
    assert not [e for e in d["timeline"] if e["action"] == "message"]


async def test_bad_message_texts_are_422(stack: Stack) -> None:
    iid = (await stack.submit())["incident_id"]
    await stack.wait_projected(iid)
    for body in ({}, {"text": ""}, {"text": "   \n "}, {"text": "x" * 1001},
                 {"text": QUESTION, "who": "me"}):
        r = await stack.act(iid, "message", "operator", body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"] == "validation_error"
    assert (await stack.act(iid, "message", "operator", {"text": "x" * 1000})).status_code == 200


async def test_no_message_once_closed(stack: Stack) -> None:
    iid = await stack.routed(WARD_A)
    r = await stack.act(iid, "close", "supervisor", {"outcome": "resolved", "summary": "Xong"})
    assert r.status_code == 200, r.text
    assert "message" not in r.json()["allowed_actions"]
    r = await stack.act(iid, "message", "operator", {"text": QUESTION})
    assert r.status_code == 409, r.text
    assert r.json() == {"error": "illegal_transition", "detail":
                        "Không thể thực hiện “Hỏi người báo tin”: vụ việc đang ở trạng thái "
                        "“Đã kết thúc”"}
    en = await stack.client.post(f"/api/v1/incidents/{iid}/actions/message",
                                 json={"text": QUESTION},
                                 headers={**stack.auth("operator"), "Accept-Language": "en"})
    assert en.status_code == 409
    assert en.json()["detail"] == "Cannot “Ask the reporter”: the incident is in state “Closed”"


async def _additions(stack: Stack, report_id: str) -> int:
    async with stack.infra.db.session() as s:
        return (await s.execute(select(func.count()).select_from(CitizenAddition).where(
            CitizenAddition.report_id == report_id))).scalar_one()


async def test_replies_that_answer_nothing_are_422_and_replies_count_as_additions(
    make_stack: StackMaker,
) -> None:
    stack = await make_stack(CANHBAO_INFO_PER_HOUR=2)
    accepted = await stack.submit()
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    await stack.wait_projected(iid)
    r = await stack.act(iid, "message", "operator", {"text": QUESTION})
    seq = next(e["seq"] for e in r.json()["timeline"] if e["action"] == "message")

    # A seq that is no staff message of this report (the receipt's, an unknown one).
    for bad in (1, seq + 50):
        r = await _answer(stack, token, "Có", bad)
        assert r.status_code == 422, r.text
        assert r.json()["fields"][0]["field"] == "reply_to"
        assert r.json()["fields"][0]["message"] == "Không có câu hỏi này để trả lời"
    en = await _answer(stack, token, "Yes", seq + 50, lang="en")
    assert en.status_code == 422, en.text
    assert en.json()["fields"][0]["message"] == "there is no such question to answer"
    for bad in (0, -1, "abc"):
        assert (await _answer(stack, token, "Có", bad)).status_code == 422
    assert (await _answer(stack, token, None, seq)).status_code == 422  # nothing said
    assert await _additions(stack, iid) == 0  # refusals use up nothing

    assert (await _answer(stack, token, "Có", seq)).status_code == 200
    assert (await _answer(stack, token, "Biển 59X1", seq)).status_code == 200
    r = await _answer(stack, token, "Thêm nữa", seq)
    assert r.status_code == 429 and r.headers.get("Retry-After")
    assert await _additions(stack, iid) == 2
    view = await _track(stack, token)
    assert [x["text"] for x in view["messages"][0]["replies"]] == ["Có", "Biển 59X1"]


async def test_a_question_can_always_be_answered_once(make_stack: StackMaker) -> None:
    """A reporter who used up the hour's additions and the text budget can still give the
    first answer to a staff question (the police asked); a second answer is held to the
    limits again."""
    stack = await make_stack(CANHBAO_INFO_PER_HOUR=2, CANHBAO_INFO_TEXT_BUDGET=25)
    accepted = await stack.submit()
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    await stack.wait_projected(iid)
    for text in ("bổ sung một", "bổ sung hai"):
        r = await stack.client.post(f"/api/v1/track/{token}/info", json={"text": text})
        assert r.status_code == 200, r.text
    r = await stack.client.post(f"/api/v1/track/{token}/info", json={"text": "ba"})
    assert r.status_code == 429
    r = await stack.act(iid, "message", "operator", {"text": QUESTION})
    seq = next(e["seq"] for e in r.json()["timeline"] if e["action"] == "message")
    r = await _answer(stack, token, "Có, biển số 59X1-234.56, xe màu đen", seq)
    assert r.status_code == 200, r.text
    r = await _answer(stack, token, "Thêm nữa", seq)
    assert r.status_code == 429
    view = await _track(stack, token)
    assert [x["text"] for x in view["messages"][0]["replies"]] == [
        "Có, biển số 59X1-234.56, xe màu đen"]


async def test_unknown_token_cannot_answer(stack: Stack) -> None:
    r = await _answer(stack, "no-such-token", "Có", 2)
    assert r.status_code == 404
