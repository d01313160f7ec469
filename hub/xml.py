"""Safe XML parsing: no DTDs, no entities, no network, bounded size and depth."""

from __future__ import annotations

from typing import Any

from lxml import etree

from hub.errors import MalformedDocument

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 200


def safe_parser() -> etree.XMLParser:
    """A parser that never expands entities, loads DTDs or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def parse_document(body: bytes, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse ``body`` as an XML document, refusing what could hurt the hub.

    Raises:
        MalformedDocument: too large, not well-formed, carries a DOCTYPE, or nests too deep.
    """
    if len(body) > max_bytes:
        raise MalformedDocument(f"document of {len(body)} bytes exceeds the limit of {max_bytes}")
    try:
        root = etree.fromstring(body, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedDocument(f"not well-formed XML: {exc}") from exc
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype:
        # A DOCTYPE is how entity-expansion and external-entity attacks arrive.
        raise MalformedDocument("documents with a DOCTYPE are refused")
    _check_depth(root)
    return root


def root_namespace(root: etree._Element) -> str:
    """The namespace URI of the root element, the CRWDE template id of a form."""
    return etree.QName(root).namespace or ""


def _check_depth(root: etree._Element) -> None:
    depth = 0
    for event, _element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > MAX_DEPTH:
            raise MalformedDocument(f"document nests deeper than {MAX_DEPTH} levels")
