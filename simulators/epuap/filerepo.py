"""ePUAP FileRepo on loopback: uploadFile keeps large attachments, downloadFile returns them.

Served from ``filerepo.wsdl`` through zeep's binding objects, as the other services are.
A document sent through the skrytka may carry, instead of a large attachment's bytes,
a reference ``<FileRepo URL>?fileId=<id>``; whoever receives it downloads the file here.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import zeep
from flask import Flask, Response, request
from lxml import etree

FILEREPO_WSDL = Path(__file__).resolve().parents[2] / "wsdl" / "epuap" / "filerepo.wsdl"
FILEREPO_BINDING = "{http://ws.epuap.gov.pl/filerepo/}FileRepoBinding"
FILEREPO_PATH = "/repo-ws-ext/FileRepoService"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True)
class StoredFile:
    """One uploaded file."""

    content: bytes
    filename: str
    mime_type: str
    subject: str


@dataclass
class FileRepository:
    """The files uploaded so far, by id."""

    files: dict[str, StoredFile] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, stored: StoredFile) -> str:
        """Keep ``stored``; return its new id."""
        file_id = uuid.uuid4().hex
        with self.lock:
            self.files[file_id] = stored
        return file_id

    def get(self, file_id: str) -> StoredFile | None:
        """The file ``file_id``, if it was uploaded."""
        with self.lock:
            return self.files.get(file_id)


class Security(Protocol):
    """The simulator's WS-Security policy, shared with its other services."""

    def check(self, envelope: etree._Element) -> str | None:
        """Refuse an unsigned or badly signed request (raises); return the signer."""

    def sign(self, envelope: etree._Element) -> None:
        """Sign an answer in place."""


def register_filerepo(
    app: Flask, security: Security, repository: FileRepository | None = None
) -> FileRepository:
    """Serve FileRepoService on ``app`` under ``security``; return the repository behind it."""
    files = repository or FileRepository()
    binding = zeep.Client(str(FILEREPO_WSDL)).wsdl.bindings[FILEREPO_BINDING]

    @app.post(FILEREPO_PATH)
    def filerepo() -> Response:
        envelope = etree.fromstring(
            request.get_data(), parser=etree.XMLParser(resolve_entities=False, no_network=True)
        )
        try:
            security.check(envelope)
        except Exception as exc:  # noqa: BLE001 - the policy's fault, answered as a Fault
            return _fault("wsse:InvalidSecurity", str(exc))
        answer = _handle(binding, files, envelope)
        if answer.status_code == 200:
            signed = etree.fromstring(answer.get_data())
            security.sign(signed)
            answer.set_data(etree.tostring(signed))
        return answer

    app.extensions["epuap_filerepo"] = files
    return files


def _handle(binding: Any, files: FileRepository, envelope: etree._Element) -> Response:
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    uploading = body is not None and _first_child_is(body, "UploadFileParam")
    operation = "uploadFile" if uploading else "downloadFile"
    values = binding.get(operation).input.deserialize(envelope)
    if operation == "uploadFile":
        return _answer(binding, operation, _upload(files, values))
    return _download(binding, files, values)


def _first_child_is(body: etree._Element, name: str) -> bool:
    child = next(iter(body), None)
    return child is not None and etree.QName(child).localname == name


def _upload(files: FileRepository, values: Any) -> str:
    return files.keep(
        StoredFile(values.file, values.filename, values.mimeType, values.subject or "")
    )


def _download(binding: Any, files: FileRepository, values: Any) -> Response:
    stored = files.get(values.fileId)
    if stored is None:
        return _fault("soap-env:Client", f"Brak pliku {values.fileId}")
    return _answer(
        binding,
        "downloadFile",
        {"file": stored.content, "filename": stored.filename, "mimeType": stored.mime_type},
    )


def _fault(code: str, reason: str) -> Response:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap-env": SOAP_ENV})
    fault = etree.SubElement(
        etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault"
    )
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = reason
    return Response(etree.tostring(envelope), status=500, mimetype="text/xml")


def _answer(binding: Any, operation: str, values: Any) -> Response:
    # A one-element answer (uploadFile's fileId5) is serialized from its value alone.
    output = binding.get(operation).output
    serialized = (
        output.serialize(**values) if isinstance(values, dict) else output.serialize(values)
    )
    return Response(etree.tostring(serialized.content), mimetype="text/xml")
