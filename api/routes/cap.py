"""CAP 1.2 (OASIS Common Alerting Protocol) for alerts published by supervisors: an Atom
feed and one XML document per alert, language vi-VN, the area as a circle."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import col

from api.deps import SessionDep, SettingsDep
from api.errors import not_found
from core.settings import HCMC_TZ, Settings
from schema.labels import label
from schema.states import Category
from schema.tables import PublicAlert

router = APIRouter(prefix="/cap", tags=["cap"])

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
SENDER = "canhbao@congan.tphcm.gov.vn"
SENDER_NAME = "Công an Thành phố Hồ Chí Minh"

CAP_CATEGORY = {"crime": "Security", "traffic_accident": "Transport",
                "fire_explosion": "Fire", "other": "Safety"}
SEVERITY = {1: "Extreme", 2: "Severe", 3: "Moderate", 4: "Minor"}
URGENCY = {1: "Immediate", 2: "Immediate", 3: "Expected", 4: "Expected"}


def cap_time(at: datetime) -> str:
    """CAP dateTime: local offset, no fractions, never 'Z'."""
    return at.astimezone(HCMC_TZ).replace(microsecond=0).isoformat()


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def cap_document(alert: PublicAlert, base_url: str) -> bytes:
    """One CAP 1.2 alert, elements in the order the schema requires."""
    ET.register_namespace("", CAP_NS)
    q = f"{{{CAP_NS}}}"
    root = ET.Element(f"{q}alert")
    _sub(root, f"{q}identifier", f"urn:uuid:{alert.id}")
    _sub(root, f"{q}sender", SENDER)
    _sub(root, f"{q}sent", cap_time(alert.sent_at))
    _sub(root, f"{q}status", "Actual")
    _sub(root, f"{q}msgType", "Alert")
    _sub(root, f"{q}scope", "Public")
    info = _sub(root, f"{q}info")
    _sub(info, f"{q}language", "vi-VN")
    _sub(info, f"{q}category", CAP_CATEGORY.get(alert.category, "Other"))
    _sub(info, f"{q}event", label(Category(alert.category)))
    _sub(info, f"{q}responseType", "Avoid")
    _sub(info, f"{q}urgency", URGENCY.get(alert.priority, "Unknown"))
    _sub(info, f"{q}severity", SEVERITY.get(alert.priority, "Unknown"))
    _sub(info, f"{q}certainty", "Observed")
    _sub(info, f"{q}senderName", SENDER_NAME)
    _sub(info, f"{q}headline", alert.headline)
    _sub(info, f"{q}instruction", alert.instruction)
    _sub(info, f"{q}web", f"{base_url}/cap/alerts/{alert.id}.xml")
    _sub(info, f"{q}contact", "113")
    area = _sub(info, f"{q}area")
    _sub(area, f"{q}areaDesc", f"Bán kính {alert.radius_m} m quanh vị trí sự việc")
    _sub(area, f"{q}circle", f"{alert.lat:.6f},{alert.lon:.6f} {alert.radius_m / 1000:.3f}")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _base(request: Request, settings: Settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


@router.get("/alerts.atom", response_class=Response,
            responses={200: {"content": {"application/atom+xml": {}}}})
async def alerts_feed(request: Request, s: SessionDep, settings: SettingsDep) -> Response:
    """The 100 newest published alerts."""
    rows = (await s.execute(select(PublicAlert).order_by(
        col(PublicAlert.sent_at).desc()).limit(100))).scalars().all()
    base = _base(request, settings)
    ET.register_namespace("", ATOM_NS)
    a = f"{{{ATOM_NS}}}"
    feed = ET.Element(f"{a}feed")
    _sub(feed, f"{a}id", f"{base}/cap/alerts.atom")
    _sub(feed, f"{a}title", "CanhBao — Cảnh báo an ninh trật tự TP.HCM")
    _sub(feed, f"{a}updated", cap_time(rows[0].sent_at) if rows else "2026-01-01T00:00:00+07:00")
    author = _sub(feed, f"{a}author")
    _sub(author, f"{a}name", SENDER_NAME)
    link = _sub(feed, f"{a}link")
    link.set("rel", "self")
    link.set("href", f"{base}/cap/alerts.atom")
    for row in rows:
        entry = _sub(feed, f"{a}entry")
        _sub(entry, f"{a}id", f"urn:uuid:{row.id}")
        _sub(entry, f"{a}title", row.headline)
        _sub(entry, f"{a}updated", cap_time(row.sent_at))
        _sub(entry, f"{a}summary", row.instruction)
        alt = _sub(entry, f"{a}link")
        alt.set("rel", "alternate")
        alt.set("type", "application/cap+xml")
        alt.set("href", f"{base}/cap/alerts/{row.id}.xml")
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get("/alerts/{alert_id}.xml", response_class=Response,
            responses={200: {"content": {"application/cap+xml": {}}}, 404: {"model": dict}})
async def alert_xml(request: Request, s: SessionDep, settings: SettingsDep,
                    alert_id: Annotated[uuid.UUID, Path()]) -> Response:
    row = await s.get(PublicAlert, str(alert_id))
    if row is None:
        raise not_found("Không tìm thấy cảnh báo", "No such alert")
    return Response(cap_document(row, _base(request, settings)),
                    media_type="application/cap+xml; charset=utf-8")
