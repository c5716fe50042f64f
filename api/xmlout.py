"""The one XML serializer for everything we publish (CAP 1.2 documents, the Atom feed).

Built on lxml: every text and attribute value goes through schema.text.clean_text first,
so a character XML 1.0 forbids (U+000B pasted from Word, NUL, a lone surrogate; stored
before inputs were cleaned, or coming from anywhere else) is dropped instead of producing
a document no consumer can parse; lxml escapes markup and writes UTF-8 with a declaration.
A caller cannot emit an ill-formed document through it.

    root = new_root(CAP_NS, "alert")
    sub(root, "identifier", "urn:uuid:…")
    body = serialize(root)
"""

from __future__ import annotations

from lxml import etree

from schema.text import clean_text


def _text(value: str) -> str:
    return clean_text(value)


def new_root(namespace: str, tag: str) -> etree._Element:
    """A root element in `namespace` (the default namespace of the document)."""
    return etree.Element(f"{{{namespace}}}{tag}", nsmap={None: namespace})


def sub(parent: etree._Element, tag: str, text: str | None = None,
        **attrs: str) -> etree._Element:
    """A child of `parent` in the parent's namespace, with cleaned text and attributes."""
    namespace = etree.QName(parent).namespace
    el = etree.SubElement(parent, f"{{{namespace}}}{tag}" if namespace else tag)
    for key, value in attrs.items():
        el.set(key, _text(value))
    if text is not None:
        el.text = _text(text)
    return el


def serialize(root: etree._Element) -> bytes:
    """The document as UTF-8 bytes with an XML declaration."""
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)
