"""Large attachments leave the document for ePUAP's FileRepo, and a reference takes their place.

A CRWDE document carries its attachments inline (``str:Zalacznik`` with base64
``str:DaneZalacznika``). Above a size limit the hub uploads the attachment with FileRepo
``uploadFile`` and writes, instead of the bytes, the reference ePUAP clients resolve:
``<FileRepo URL>?fileId=<id>``, with ``kodowanie="URI"``. A document that is already
signed is sent as it is: changing it would break the signature.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from lxml import etree

from hub.xml import parse_document

STRUKTURA = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"
DS = "http://www.w3.org/2000/09/xmldsig#"

Upload = Callable[[bytes, str, str], str]


def offload_large_attachments(
    document: bytes, *, limit_bytes: int, filerepo_url: str, upload: Upload
) -> bytes:
    """``document`` with every inline attachment over ``limit_bytes`` moved to FileRepo.

    Args:
        upload: stores (content, file name, MIME type) in FileRepo and returns its id.
    """
    root = parse_document(document)
    if root.find(f".//{{{DS}}}Signature") is not None:
        return document
    moved = [
        _move(attachment, filerepo_url, upload)
        for attachment in root.iter(f"{{{STRUKTURA}}}Zalacznik")
        if _inline_size(attachment) > limit_bytes
    ]
    if not moved:
        return document
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _inline_size(attachment: etree._Element) -> int:
    data = attachment.find(f"{{{STRUKTURA}}}DaneZalacznika")
    if data is None or attachment.get("kodowanie", "base64") != "base64" or not data.text:
        return 0
    return len(data.text) * 3 // 4


def _move(attachment: etree._Element, filerepo_url: str, upload: Upload) -> str:
    data = attachment.find(f"{{{STRUKTURA}}}DaneZalacznika")
    assert data is not None
    content = base64.b64decode(data.text or "")
    file_id = upload(
        content,
        attachment.get("nazwaPliku", "zalacznik"),
        attachment.get("format", "application/octet-stream"),
    )
    data.text = f"{filerepo_url}?fileId={file_id}"
    attachment.set("kodowanie", "URI")
    return file_id
