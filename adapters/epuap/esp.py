"""The hub's own ESP (elektroniczna skrzynka podawcza): ePUAP pushes filings to it.

ePUAP delivers a document addressed to an office's mailbox by calling the office's
ESP with the shape of WS-Skrytka ``nadaj`` (the document in the Body, the addresses
in SOAP headers) and expects ``OdpowiedzSkrytki``. The hub serves it from the same
``skrytka.wsdl`` its client uses, through zeep's binding objects, so both ends read
one contract. A document is stored before the answer is given; the answer carries the
hub's document id and, for mailboxes configured so, the hub's own UPP, XAdES-signed
with the office's key. The same document pushed twice is stored once and answered
with the same id.

Only ePUAP pushes: every request must carry WS-Security signed with ePUAP's pinned
certificate (the platforms' trust list, or the channel's ``platform_certificate``), and
the hub refuses to start an ESP channel without ``ws_security = true``. An unsigned
push, one signed by anyone else (an office's certificate of the same CA included) or
with a broken signature gets a SOAP Fault, is quarantined, stores no message and gets
no UPP.

Bad input is answered with a SOAP Fault whose ``Wyjatek`` code a caller can act on,
and what could be read of it is kept as a rejected message.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import zeep
from flask import Blueprint, Flask, Response, current_app, request
from lxml import etree

from adapters.epuap.contract import SKRYTKA_BINDING, SKRYTKA_WSDL, STATUS_OK, zeep_settings
from hub.envelope import Address, Envelope
from hub.errors import ConfigurationError, HubError, MalformedDocument, SignatureInvalid
from hub.inbound import accept_into
from hub.logging import get_logger
from hub.receipts import Evidence
from hub.region import InboundConfig, Office
from hub.reload import RegionSource
from hub.settings import Settings
from hub.signing.keystore import Keystore
from hub.signing.trust import platform_certificate_path
from hub.signing.wssecurity import verify_envelope
from hub.signing.xades import sign_document
from hub.store.repository import Store
from hub.web import REGION_EXTENSION, quarantine_request
from hub.xml import parse_document, root_namespace

log = get_logger(__name__)

ESP_PATH = "/epuap/esp"
CHANNEL = "epuap-esp"
SOAP_MEDIA_TYPES = frozenset({"text/xml", "application/soap+xml", "application/xml"})
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OBIEKTY = "http://wsdl.epuap.gov.pl/obiekty/"
UPO = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"
MAX_REQUEST_BYTES = 20 * 1024 * 1024

# Wyjatek codes the ESP answers with; a sender can act on each.
CODE_MALFORMED_REQUEST = 10
CODE_UNKNOWN_MAILBOX = 11
CODE_MALFORMED_DOCUMENT = 12
CODE_SIGNATURE = 13
CODE_STORE_UNAVAILABLE = 20


@dataclass(frozen=True)
class EspService:
    """What the ESP needs: the catalogue, the store, the offices' keys, ePUAP's certificate.

    ``platform_certificate_pem`` is the pinned certificate every push must be signed
    with (WS-Security): only ePUAP pushes to the ESP, never an office or a stranger.
    """

    # The process's one reloading region: an office added to the file is served here too.
    regions: RegionSource
    store: Store
    keystore: Keystore
    platform_certificate_pem: bytes
    issue_upp: bool
    binding: Any


blueprint = Blueprint("epuap_esp", __name__)


def register(app: Flask) -> None:
    """Plug the ESP into the hub's HTTP app (entry point ``hub.web``).

    Raises:
        ConfigurationError: the region's ESP channel lacks ``ws_security = true``, or
            ePUAP's certificate is missing: the hub does not start an ESP anyone can push to.
    """
    settings: Settings = app.config["HUB_SETTINGS"]
    regions: RegionSource = app.extensions[REGION_EXTENSION]
    region = regions.current()
    channel = next((c for c in region.inbound if c.kind == "epuap-esp"), None)
    if channel is None:
        return  # this region receives nothing by push
    client = zeep.Client(str(SKRYTKA_WSDL), settings=zeep_settings())
    app.extensions["epuap_esp"] = EspService(
        regions=regions,
        store=app.config["HUB_STORE"],
        keystore=Keystore(settings.keys, settings.keystore_password),
        platform_certificate_pem=_pinned_platform_certificate(channel, settings),
        issue_upp=bool(channel.options.get("issue_upp", True)),
        binding=client.wsdl.bindings[SKRYTKA_BINDING],
    )
    app.register_blueprint(blueprint)


def _pinned_platform_certificate(channel: InboundConfig, settings: Settings) -> bytes:
    """ePUAP's certificate, pinned as the pull side pins it (the platforms' trust list)."""
    if channel.options.get("ws_security") is not True:
        raise ConfigurationError(
            f"inbound channel {channel.name!r} (epuap-esp): ws_security = true is required; "
            "an ESP without WS-Security would take pushes from anyone"
        )
    configured = str(channel.options.get("platform_certificate", ""))
    path = platform_certificate_path(settings.trust, "epuap", configured)
    if not path.is_file():
        raise ConfigurationError(
            f"inbound channel {channel.name!r} (epuap-esp): ePUAP's certificate {path} is missing"
        )
    return path.read_bytes()


@blueprint.post(ESP_PATH)
def receive() -> Response:
    """Take one pushed document: verify, store, answer with its id (and a UPP)."""
    service: EspService = current_app.extensions["epuap_esp"]
    try:
        return _soap_answer(service.binding, _receive(service, request.get_data()))
    except EspRefusal as refusal:
        log.info("esp_refused", code=refusal.code, reason=refusal.reason)
        if not refusal.stored_as_message:
            quarantine_request(
                CHANNEL,
                f"wyjatek-{refusal.code}",
                refusal.reason,
                authenticated=refusal.authenticated,
            )
        return _soap_fault(refusal)


def _authenticated_envelope(service: EspService, raw: bytes) -> etree._Element:
    """The SOAP envelope, once its WS-Security signature proved it ePUAP's.

    Raises:
        EspRefusal: not a SOAP request, or not ePUAP's; marked unauthenticated, so the
            quarantine keeps only the start of what a stranger sent.
    """
    try:
        _check_media_type()
        envelope = _parse_envelope(raw)
        _check_ws_security(service, envelope)
    except EspRefusal as refusal:
        refusal.authenticated = False
        raise
    return envelope


def _check_media_type() -> None:
    if request.mimetype not in SOAP_MEDIA_TYPES:
        detail = f"a SOAP 1.1 request is text/xml; this one declares {request.mimetype!r}"
        raise EspRefusal(CODE_MALFORMED_REQUEST, detail)


class EspRefusal(HubError):
    """A pushed document the ESP refuses, with the Wyjatek code to answer."""

    def __init__(
        self,
        code: int,
        reason: str,
        fault_code: str = "soap-env:Client",
        *,
        stored_as_message: bool = False,
    ) -> None:
        super().__init__(reason)
        self.code = str(code)
        self.fault_code = fault_code
        # A document that was readable is kept as a rejected message, not quarantined.
        self.stored_as_message = stored_as_message
        # Until its WS-Security signature verified, a caller is nobody the hub knows.
        self.authenticated = True


def _receive(service: EspService, raw: bytes) -> dict[str, Any]:
    envelope = _authenticated_envelope(service, raw)
    try:
        request_values = service.binding.get("nadaj").input.deserialize(envelope)
    except (zeep.exceptions.Error, ValueError) as exc:
        raise EspRefusal(CODE_MALFORMED_REQUEST, f"not a nadaj request: {exc}") from exc
    header, body = request_values.header, request_values.body
    office = service.regions.current().office_by_esp(str(header.adresSkrytki or ""))
    if office is None:
        raise EspRefusal(CODE_UNKNOWN_MAILBOX, f"no office has the mailbox {header.adresSkrytki!r}")
    content: bytes = body.zawartosc or b""
    return _store_and_answer(service, office, header, body, content)


def _store_and_answer(
    service: EspService, office: Office, header: Any, body: Any, content: bytes
) -> dict[str, Any]:
    digest = hashlib.sha256(content).hexdigest()
    external_id = f"epuap-esp:{office.esp_address}:{digest}"
    envelope, reason = _envelope(office, header, body, content)
    try:
        outcome = accept_into(service.store)(
            envelope, external_id=external_id, rejected_reason=reason
        )
        message_id = service.store.message_id_by_external_id(external_id) or str(
            envelope.envelope_id
        )
    except HubError as exc:
        raise EspRefusal(
            CODE_STORE_UNAVAILABLE,
            f"cannot store the document now: {exc.reason}",
            "soap-env:Server",
        ) from exc
    if reason is not None:
        raise EspRefusal(CODE_MALFORMED_DOCUMENT, reason, stored_as_message=True)
    answer: dict[str, Any] = {
        "status": {"kod": STATUS_OK, "komunikat": "OK"},
        "identyfikatorDokumentu": message_id,
    }
    if service.issue_upp:
        upp_id, upp = _upp(service, office, header, message_id, content)
        if outcome != "duplicate":
            service.store.record_receipt(message_id, Evidence("UPP-issued", upp, upp_id, True))
        answer["identyfikatorUpp"] = upp_id
        answer["zalacznik"] = {"nazwaPliku": "UPP.xml", "typPliku": "text/xml", "zawartosc": upp}
    log.info("esp_document_received", outcome=outcome, envelope_id=message_id, office=office.id)
    return answer


def _envelope(
    office: Office, header: Any, body: Any, content: bytes
) -> tuple[Envelope, str | None]:
    try:
        document_type, reason = root_namespace(parse_document(content)), None
    except MalformedDocument as exc:
        document_type, reason = "unparseable", f"{exc.code}: {exc.reason}"
    envelope = Envelope(
        document_type=document_type,
        source="epuap-esp",
        destination=Address(office.id),
        body=content,
        content_type=str(body.typPliku or "application/xml"),
        headers={
            "epuap-mailbox": office.esp_address,
            "epuap-reply-to": str(header.adresOdpowiedzi or ""),
            "epuap-test": "true" if header.czyProbne else "false",
            "filename": str(body.nazwaPliku or "dokument.xml"),
        },
    )
    return envelope, reason


def _upp(
    service: EspService, office: Office, header: Any, document_id: str, content: bytes
) -> tuple[str, bytes]:
    """The hub's UPP for a received document, signed with the office's key."""
    upp_id = f"UPP-{uuid.uuid5(uuid.NAMESPACE_URL, document_id)}"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    root = etree.Element(f"{{{UPO}}}Dokument", nsmap={"pos": UPO})
    upp = etree.SubElement(root, f"{{{UPO}}}UPP")
    etree.SubElement(upp, f"{{{UPO}}}IdentyfikatorPoswiadczenia").text = upp_id
    _party(upp, "Adresat", office.name, office.epuap_podmiot)
    _party(upp, "Nadawca", str(header.podmiot or ""), str(header.podmiot or ""))
    etree.SubElement(upp, f"{{{UPO}}}DataDoreczenia").text = now
    etree.SubElement(upp, f"{{{UPO}}}DataWytworzeniaPoswiadczenia").text = now
    etree.SubElement(upp, f"{{{UPO}}}IdentyfikatorDokumentu").text = document_id
    digest = etree.SubElement(
        upp, f"{{{UPO}}}InformacjaUzupelniajaca", TypInformacjiUzupelniajacej="SkrotDokumentu"
    )
    digest.text = base64.b64encode(hashlib.sha256(content).digest()).decode()
    unsigned = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return upp_id, sign_document(unsigned, service.keystore.identity(office.id))


def _party(parent: etree._Element, role: str, name: str, identifier: str) -> None:
    party = etree.SubElement(parent, f"{{{UPO}}}{role}")
    etree.SubElement(party, f"{{{UPO}}}Nazwa").text = name
    etree.SubElement(
        party, f"{{{UPO}}}IdentyfikatorPodmiotu", TypIdentyfikatora="ePUAP"
    ).text = identifier


def _parse_envelope(raw: bytes) -> etree._Element:
    try:
        envelope = parse_document(raw, max_bytes=MAX_REQUEST_BYTES)
    except MalformedDocument as exc:
        raise EspRefusal(CODE_MALFORMED_REQUEST, exc.reason) from exc
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        raise EspRefusal(CODE_MALFORMED_REQUEST, "the request is not a SOAP 1.1 Envelope")
    return envelope


def _check_ws_security(service: EspService, envelope: etree._Element) -> None:
    """Require ePUAP's own signature over the Body and a current Timestamp."""
    try:
        verify_envelope(envelope, expected_certificate_pem=service.platform_certificate_pem)
    except SignatureInvalid as exc:
        raise EspRefusal(CODE_SIGNATURE, f"WS-Security: {exc.reason}") from exc


def _soap_answer(binding: Any, values: dict[str, Any]) -> Response:
    serialized = binding.get("nadaj").output.serialize(**values)
    return Response(
        etree.tostring(serialized.content, xml_declaration=True, encoding="UTF-8"),
        mimetype="text/xml",
    )


def _soap_fault(refusal: EspRefusal) -> Response:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap-env": SOAP_ENV, "ob": OBIEKTY})
    fault = etree.SubElement(
        etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault"
    )
    etree.SubElement(fault, "faultcode").text = refusal.fault_code
    etree.SubElement(fault, "faultstring").text = refusal.reason
    wyjatek = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{OBIEKTY}}}Wyjatek")
    etree.SubElement(wyjatek, "kod").text = refusal.code
    etree.SubElement(wyjatek, "komunikat").text = refusal.reason
    body = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return Response(body, status=500, mimetype="text/xml")


class EspChannel:
    """The ``epuap-esp`` inbound kind: pushed to over HTTP, so there is nothing to poll."""
