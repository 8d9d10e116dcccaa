"""A RaaS report's own column list, read from its XML Schema (pure; docs/workday.md §2.1).

Rows of a JSON report leave empty cells out, so a column renamed in the report cannot be
told from a column that is empty for everyone. The report's schema can: Workday serves an
XML Schema for every web-service report at the report URL with ``?xsds`` (the query
singer-io/tap-workday-raas ``client.download_xsd`` sends), in which
``complexType[@name='Report_EntryType']/sequence/element/@name`` lists the XML alias of
every column in report order (``discover.generate_schema_for_report`` reads the same
path). Group columns are elements whose type is another complexType; their alias is the
group's name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

XSD_NS = "http://www.w3.org/2001/XMLSchema"
ENTRY_TYPE = "Report_EntryType"
# A report's schema is a few kilobytes; anything far larger is not one.
MAX_XSD_BYTES = 4 * 1024 * 1024


class SchemaUnreadable(ValueError):
    """The answer is not a report schema this code can read (the message says why)."""


def report_columns(body: bytes) -> list[str]:
    """The column aliases a RaaS XSD declares, in report order.

    Entity declarations are refused before parsing: a schema never needs them, and the
    standard library's parser would expand them (the "billion laughs" shape).
    """
    if len(body) > MAX_XSD_BYTES:
        raise SchemaUnreadable(f"it is {len(body)} bytes, more than a report schema")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise SchemaUnreadable("it declares a DOCTYPE or entities, which a schema never does")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SchemaUnreadable(f"it is not XML ({exc})") from None
    if root.tag != f"{{{XSD_NS}}}schema":
        raise SchemaUnreadable(f"its root element is {_local(root.tag)!r}, not an XML "
                               "Schema")
    ns = {"xsd": XSD_NS}
    entry = root.find(f"./xsd:complexType[@name='{ENTRY_TYPE}']", ns)
    if entry is None:
        raise SchemaUnreadable(f"it defines no {ENTRY_TYPE}")
    names = [e.get("name") or "" for e in entry.findall("./xsd:sequence/xsd:element", ns)]
    if not all(names):
        raise SchemaUnreadable(f"an element of {ENTRY_TYPE} has no name")
    return list(dict.fromkeys(names))


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
