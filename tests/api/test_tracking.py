"""What the reporter reads by the tracking link, as JSON (`GET /api/v1/track/{token}`) and
as the page (`/t/{token}`), from one record (api/services/tracking_record.py): the closing
outcome and public summary, and for a report merged into another incident the primary's
public progress in full, with one line about the merge and no staff name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from schema.states import STATE_PUBLIC_NOTES, State
from schema.tables import IncidentEvent
from tests.api.conftest import WARD_A, Stack, eventually


async def _track(stack: Stack, token: str, lang: str = "vi") -> dict[str, Any]:
    r = await stack.client.get(f"/api/v1/track/{token}", headers={"Accept-Language": lang})
    assert r.status_code == 200, r.text
    return r.json()


async def _page(stack: Stack, token: str, lang: str = "vi") -> str:
    r = await stack.client.get(f"/t/{token}", headers={"Accept-Language": lang})
    assert r.status_code == 200, r.text
    return r.text


def _staff_names(stack: Stack) -> list[str]:
    return [n for u in stack.people.users.values() for n in (u.username, u.full_name) if n]


async def _route(stack: Stack, iid: str) -> None:
    for action, body in (("classify", {"category": "crime", "priority": 2}),
                         ("route", {"ward_code": stack.people.places[WARD_A].code})):
        r = await stack.act(iid, action, "operator", body)
        assert r.status_code == 200, (action, r.text)


async def test_the_closing_outcome_and_summary_in_the_json_as_on_the_page(
        stack: Stack) -> None:
    accepted = await stack.submit()
    iid, token = accepted["incident_id"], accepted["tracking_token"]
    await stack.wait_projected(iid)
    await _route(stack, iid)
    view = await _track(stack, token)
    assert view["outcome"] is None and view["summary"] is None
    summary = "Không phát hiện đối tượng; đã tuần tra khu vực chợ."
    r = await stack.act(iid, "close", "supervisor", {"outcome": "false_alarm",
                                                     "summary": summary})
    assert r.status_code == 200, r.text
    view = await _track(stack, token)
    assert view["state"] == "closed"
    assert view["outcome"] == {"code": "false_alarm", "label_vi": "Báo tin sai",
                               "label_en": "False alarm"}
    assert view["summary"] == summary
    # The page says the same, in the reader's language.
    page = await _page(stack, token)
    assert "Báo tin sai" in page and summary in page
    assert "False alarm" in await _page(stack, token, "en")


async def test_a_merged_reporter_reads_the_primarys_public_progress_in_full(
        stack: Stack) -> None:
    first = await stack.submit(description="Cướp giật trước chợ Bến Thành")
    primary = first["incident_id"]
    await stack.wait_projected(primary)
    before = "Tổ tuần tra đang đến chợ Bến Thành."
    internal = "Ghi chú nội bộ: nghi phạm quen mặt"
    question = "Anh/chị thấy đối tượng đi hướng nào?"
    for action, body in (("verify", {}), ("note", {"text": before, "public": True}),
                         ("note", {"text": internal}), ("message", {"text": question})):
        r = await stack.act(primary, action, "operator", body)
        assert r.status_code == 200, (action, r.text)

    second = await stack.submit(description="Thấy cướp giật ở chợ")
    child, token = second["incident_id"], second["tracking_token"]
    await stack.wait_projected(child)
    r = await stack.act(child, "merge", "operator", {"into_incident_id": primary})
    assert r.status_code == 200 and r.json()["state"] == "merged", r.text
    await _route(stack, primary)
    after = "Đơn vị đã có mặt, đang làm việc với người dân."
    r = await stack.act(primary, "note", "officer_a", {"text": after, "public": True})
    assert r.status_code == 200, r.text

    async def told_routed() -> bool:  # the child's own note of the primary's new state
        async with stack.infra.db.session() as s:
            rows = (await s.execute(select(IncidentEvent).where(
                col(IncidentEvent.incident_id) == child,
                col(IncidentEvent.action) == "primary_changed"))).scalars().all()
        return any((e.data or {}).get("state") == "routed" for e in rows)
    await eventually(told_routed)

    view = await _track(stack, token)
    assert view["state"] == "merged"
    notes = [(e["public_note"], e["state"], e["from_primary"]) for e in view["timeline"]]
    # The primary's public steps, from before the merge as well as after, with its state.
    assert (before, "verified", True) in notes
    assert (after, "routed", True) in notes
    assert (STATE_PUBLIC_NOTES[State.ROUTED], "routed", True) in notes
    # One line about the merge; the primary's steps are not told twice.
    merged_note = STATE_PUBLIC_NOTES[State.MERGED]
    assert [n for n in notes if n[0] == merged_note] == [(merged_note, "merged", False)]
    assert not [n for n in notes if not n[2] and n[0] == STATE_PUBLIC_NOTES[State.ROUTED]]
    assert [e["at"] for e in view["timeline"]] == sorted(e["at"] for e in view["timeline"])

    page = await _page(stack, token)
    assert before in page and after in page
    assert page.count('class="ev-merge') == 1
    # Nothing meant for staff or for the other reporter, and no staff name.
    json_text = (await stack.client.get(f"/api/v1/track/{token}")).text
    for text in (json_text, page):
        for secret in (internal, question, "Cướp giật trước chợ Bến Thành",
                       *_staff_names(stack)):
            assert secret not in text, secret

    # The primary's closing is the merged reporter's too.
    summary = "Đã bắt được đối tượng."
    r = await stack.act(primary, "close", "supervisor", {"outcome": "resolved",
                                                         "summary": summary})
    assert r.status_code == 200, r.text
    view = await _track(stack, token)
    assert view["outcome"]["code"] == "resolved" and view["summary"] == summary
    assert summary in await _page(stack, token)
