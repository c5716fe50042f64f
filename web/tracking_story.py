"""The story a citizen's tracking page tells, built from the SQL read model.

One function, `build_story`, reads the report, its incident row, its `incident_events`
rows and the citizen's own attachments, and returns what the page shows: each step in plain
words with its time, the police's public notes, the closing outcome and summary, what the
citizen added (text and photos, shown back), the count of the citizen's own files, and for
a merged report one line about the merge with the primary incident's progress, and the
two-way thread: each staff message (its sender as api.services.tracking.staff_message
words it: a unit or the command centre) and the reporter's answers; the messages not yet
answered are offered at the top of the page with an answer box.

It never shows a staff name (a unit name at most), internal notes, or anything another
reporter sent: of a primary incident only its public steps (in full, from before the merge
too) as api/services/tracking_record.py loads them for the JSON view as well, which also
gives the closing.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from api.services.tracking import conversation, report_by_token, staff_message
from api.services.tracking_record import PRIMARY_PUBLIC, closing, closing_of, load_record
from schema.states import (
    ESCALATE_EVENT,
    MERGED_IN_EVENT,
    RECEIVE_EVENT,
    REPLY_EVENT,
    STAFF_MESSAGE_EVENTS,
    State,
)
from schema.tables import Attachment, IncidentEvent
from web import i18n

CITIZEN = "citizen"


def _files(ids: Any, own: dict[str, Attachment], token: str) -> list[dict[str, Any]]:
    out = []
    for aid in ids or []:
        att = own.get(str(aid))
        if att is not None:
            out.append({"url": f"/t/{token}/files/{att.id}", "id": att.id,
                        "image": att.content_type.startswith("image/"),
                        "content_type": att.content_type})
    return out


def _sender(message: Any, lang: str) -> str:
    return str(message.sender_en if lang == "en" else message.sender)


def _entry(ev: IncidentEvent, lang: str, own: dict[str, Attachment], token: str,
           primary: bool = False, asked: dict[int, str] | None = None
           ) -> dict[str, Any] | None:
    """One line of the story for `ev`, or None when the citizen has nothing to read in it."""
    t = lambda key, **kw: i18n.t(lang, key, **kw)  # noqa: E731 - local shorthand
    data = ev.data or {}
    action = ev.action
    entry: dict[str, Any] = {"at": ev.at, "text": "", "quote": None, "files": [],
                             "mine": False, "kind": action, "primary": primary}
    if primary and action not in PRIMARY_PUBLIC:
        return None
    if action == RECEIVE_EVENT:
        entry.update(text=t("story.receive"), files=_files(data.get("attachments"), own, token))
    elif action in ("verify", "classify", "acknowledge", "arrive", "reject", "cancel",
                    ESCALATE_EVENT):
        if action == "cancel" and ev.to_state != State.CANCELLED.value:
            return None
        entry["text"] = t(f"story.{action}")
    elif action in ("route", "reassign"):
        unit = data.get("unit_name")
        entry["text"] = t(f"story.{action}", unit=unit) if unit else t("story.route_any")
    elif action == "note":
        if not ev.public_note:
            return None
        entry.update(text=t("story.note"), quote=ev.public_note)
    elif action == "close":
        ended = closing_of(ev)
        entry.update(text=t("story.close"), outcome=ended.outcome_label(lang),
                     summary=ended.summary)
    elif action == "add_info":
        if ev.actor != CITIZEN:
            return None
        files = _files(data.get("attachments"), own, token)
        text = (data.get("text") or "").strip() or None
        if text is None and not files:
            return None
        entry.update(text=t("story.add_info"), quote=text, files=files, mine=True)
    elif action in STAFF_MESSAGE_EVENTS:
        message = staff_message(ev)
        entry.update(text=t("story.message", sender=_sender(message, lang)),
                     quote=message.text, seq=ev.seq)
    elif action == REPLY_EVENT:
        if ev.actor != CITIZEN:
            return None
        files = _files(data.get("attachments"), own, token)
        question = (asked or {}).get(data.get("reply_to") or 0)
        entry.update(text=t("story.reply"), quote=(data.get("text") or "").strip() or None,
                     files=files, mine=True,
                     answers=t("story.reply_to", q=question) if question else None)
    elif action == "merge":
        entry["text"] = t("story.merged")
    elif action == MERGED_IN_EVENT:
        entry["text"] = t("story.merged_in")
    else:  # locate, primary_changed, publish_alert...: nothing for the citizen
        return None
    return entry


async def build_story(db: Any, token: str, lang: str) -> dict[str, Any] | None:
    """What the tracking page shows for `token`, from SQL; None for an unknown token.

    Returns {incident_id, story: [{at, text, quote, files, mine, kind, primary, outcome?,
    summary?, seq?, answers?}] newest first, own_files: [{url, id, image, content_type}],
    own_count, closing: {outcome, summary} | None, merged: bool, primary_state: State |
    None, silent: bool, questions: [{seq, at, text, sender}] (staff messages not answered
    yet, newest first)}. Files are only the citizen's own (uploaded without a staff
    account)."""
    report = await report_by_token(db, token)
    if report is None:
        return None
    record = await load_record(db, report)
    async with db.session() as s:
        own_rows = list((await s.execute(
            select(Attachment).where(col(Attachment.incident_id) == report.id,
                                     col(Attachment.uploaded_by).is_(None))
            .order_by(col(Attachment.created_at)))).scalars())
    events = record.events
    own = {a.id: a for a in own_rows}
    thread = conversation(events)
    asked = {m.seq: m.text for m in thread}
    story = [e for ev in events if (e := _entry(ev, lang, own, token, asked=asked)) is not None]
    if not any(e["kind"] == RECEIVE_EVENT for e in story):
        story.insert(0, {"at": report.created_at, "text": i18n.t(lang, "story.receive"),
                         "quote": None, "files": _files(report.payload.get("attachments"),
                                                        own, token),
                         "mine": False, "kind": RECEIVE_EVENT, "primary": False})
    # A merged report: the primary's public steps in full, before the merge too.
    story += [e for ev in record.primary_events
              if (e := _entry(ev, lang, {}, token, primary=True)) is not None]
    story.sort(key=lambda e: (e["at"], e["kind"] != RECEIVE_EVENT), reverse=True)
    ended = closing(record)
    closing_words = ({"outcome": ended.outcome_label(lang), "summary": ended.summary}
                     if ended is not None else None)
    shown = {f["id"] for e in story for f in e["files"]}
    return {
        "incident_id": report.id,
        "story": story,
        "own_files": [f for f in _files([a.id for a in own_rows], own, token)
                      if f["id"] not in shown],
        "own_count": len(own_rows),
        "closing": closing_words,
        "merged": record.merged_at is not None,
        "primary_state": record.primary_state,
        "silent": bool(report.payload.get("silent")),
        "questions": [{"seq": m.seq, "at": m.at, "text": m.text, "sender": _sender(m, lang)}
                      for m in reversed(thread) if not m.answered],
    }


async def own_attachment(db: Any, token: str, attachment_id: str) -> Attachment | None:
    """The citizen's own file `attachment_id` of the report behind `token`, else None
    (also for a token we never issue or an id that is no UUID: nothing else, NUL bytes
    included, reaches the database)."""
    try:
        attachment_id = str(uuid.UUID(attachment_id))
    except ValueError:
        return None
    report = await report_by_token(db, token)
    if report is None:
        return None
    async with db.session() as s:
        att = await s.get(Attachment, attachment_id)
    if att is None or att.incident_id != report.id or att.uploaded_by is not None:
        return None
    return att
