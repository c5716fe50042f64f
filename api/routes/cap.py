"""CAP 1.2 (OASIS Common Alerting Protocol) for alerts published by supervisors: an Atom
feed and one XML document per alert, language vi-VN, the area as a circle."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import col

from api import xmlout
from api.deps import SessionDep, SettingsDep
from api.errors import not_found
from core.settings import HCMC_TZ, Settings
from schema import words
from schema.labels import label
from schema.states import Category
from schema.tables import PublicAlert

router = APIRouter(prefix="/cap", tags=["cap"])

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
SENDER = "canhbao@congan.tphcm.gov.vn"
SENDER_NAME = words.t("vi", "feed.cap.sender_name")

CAP_CATEGORY = {"crime": "Security", "traffic_accident": "Transport",
                "fire_explosion": "Fire", "other": "Safety"}
SEVERITY = {1: "Extreme", 2: "Severe", 3: "Moderate", 4: "Minor"}
URGENCY = {1: "Immediate", 2: "Immediate", 3: "Expected", 4: "Expected"}


def cap_time(at: datetime) -> str:
    """CAP dateTime: local offset, no fractions, never 'Z'."""
    return at.astimezone(HCMC_TZ).replace(microsecond=0).isoformat()


def cap_document(alert: PublicAlert, base_url: str) -> bytes:
    """One CAP 1.2 alert, elements in the order the schema requires (api.xmlout writes it,
    so stored text with characters XML forbids still gives a well-formed document)."""
    root = xmlout.new_root(CAP_NS, "alert")
    sub = xmlout.sub
    sub(root, "identifier", f"urn:uuid:{alert.id}")
    sub(root, "sender", SENDER)
    sub(root, "sent", cap_time(alert.sent_at))
    sub(root, "status", "Actual")
    sub(root, "msgType", "Alert")
    sub(root, "scope", "Public")
    info = sub(root, "info")
    sub(info, "language", "vi-VN")
    sub(info, "category", CAP_CATEGORY.get(alert.category, "Other"))
    sub(info, "event", label(Category(alert.category)))
    sub(info, "responseType", "Avoid")
    sub(info, "urgency", URGENCY.get(alert.priority, "Unknown"))
    sub(info, "severity", SEVERITY.get(alert.priority, "Unknown"))
    sub(info, "certainty", "Observed")
    sub(info, "senderName", SENDER_NAME)
    sub(info, "headline", alert.headline)
    sub(info, "instruction", alert.instruction)
    sub(info, "web", f"{base_url}/cap/alerts/{alert.id}.xml")
    sub(info, "contact", "113")
    area = sub(info, "area")
    sub(area, "areaDesc", words.t("vi", "feed.cap.area", radius_m=alert.radius_m))
    sub(area, "circle", f"{alert.lat:.6f},{alert.lon:.6f} {alert.radius_m / 1000:.3f}")
    return xmlout.serialize(root)


def atom_feed(rows: list[PublicAlert], base_url: str) -> bytes:
    """The Atom feed of `rows` (newest first), each entry linking its CAP document."""
    sub = xmlout.sub
    feed = xmlout.new_root(ATOM_NS, "feed")
    sub(feed, "id", f"{base_url}/cap/alerts.atom")
    sub(feed, "title", words.t("vi", "feed.cap.title"))
    sub(feed, "updated", cap_time(rows[0].sent_at) if rows else "2026-01-01T00:00:00+07:00")
    author = sub(feed, "author")
    sub(author, "name", SENDER_NAME)
    sub(feed, "link", rel="self", href=f"{base_url}/cap/alerts.atom")
    for row in rows:
        entry = sub(feed, "entry")
        sub(entry, "id", f"urn:uuid:{row.id}")
        sub(entry, "title", row.headline)
        sub(entry, "updated", cap_time(row.sent_at))
        sub(entry, "summary", row.instruction)
        sub(entry, "link", rel="alternate", type="application/cap+xml",
            href=f"{base_url}/cap/alerts/{row.id}.xml")
    return xmlout.serialize(feed)


def _base(request: Request, settings: Settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


@router.get("/alerts.atom", response_class=Response,
            responses={200: {"content": {"application/atom+xml": {}}}})
async def alerts_feed(request: Request, s: SessionDep, settings: SettingsDep) -> Response:
    """The 100 newest published alerts."""
    rows = (await s.execute(select(PublicAlert).order_by(
        col(PublicAlert.sent_at).desc()).limit(100))).scalars().all()
    body = atom_feed(list(rows), _base(request, settings))
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get("/alerts/{alert_id}.xml", response_class=Response,
            responses={200: {"content": {"application/cap+xml": {}}}, 404: {"model": dict}})
async def alert_xml(request: Request, s: SessionDep, settings: SettingsDep,
                    alert_id: Annotated[uuid.UUID, Path()]) -> Response:
    row = await s.get(PublicAlert, str(alert_id))
    if row is None:
        raise not_found(*words.both("error.not_found.alert"))
    return Response(cap_document(row, _base(request, settings)),
                    media_type="application/cap+xml; charset=utf-8")
