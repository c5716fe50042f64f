"""Payloads that cross between workflow runs of different releases."""

from __future__ import annotations

from schema.signals import MergeReply
from schema.states import State


def test_a_merge_reply_from_an_older_run_with_its_words_is_still_read() -> None:
    """Runs before session 6 sent a refusal's words beside its code; a newer worker reads
    such a reply (kept in recorded histories) and keeps only the code."""
    older = {"request_id": "r-1", "target_id": "i-2", "accepted": False,
             "target_tracking_code": "CB-ABC123", "target_state": "closed",
             "reason": "target_ended", "reason_vi": "Đã kết thúc", "reason_en": "Ended"}
    reply = MergeReply.model_validate(older)
    assert reply.reason == "target_ended" and reply.target_state is State.CLOSED
    assert "reason_vi" not in reply.model_dump()
