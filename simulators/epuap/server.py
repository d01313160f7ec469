"""Flask app playing ePUAP's SOAP services plus a JSON admin API to drive them.

Three services, each served from its real WSDL through zeep's binding objects (requests
are parsed by ``binding.get(op).input.deserialize``, answers built by
``binding.get(op).output.serialize``), so the simulator and any zeep client read the
very same contract:

* pull (``PULL_PATH``): oczekujaceDokumenty, pobierzNastepny, potwierdzOdebranie;
* skrytka (``SKRYTKA_PATH``): nadaj, answered with a signed UPP (see ``send.py``);
* doreczyciel (``DORECZYCIEL_PATH``): dorecz, later followed by a signed UPD.

skrytka and doreczyciel take their parameters (adresSkrytki, adresOdpowiedzi,
czyProbne, ...) as SOAP headers: zeep's ``input.deserialize`` returns them under
``.header`` and the ``ob:Dokument`` Body under ``.body`` (unknown headers such as
``wsse:Security`` land in ``.header._raw_elements``).

WS-Security: given a trust store (``create_app(trusted_ca_pems=...)``), every request
must carry a WS-Security signature from a certificate those CAs issued, and every
answer, Faults included, is signed with the simulator's identity (zeep checks the
signature before it looks for a Fault). Without one, nothing is signed or checked.

Codes chosen for this simulator (status ``kod`` 1 is ePUAP's OK):

* ``STATUS_OK`` = 1: normal answer.
* ``STATUS_UNKNOWN_DOCUMENT`` = 2: potwierdzOdebranie with a skrot matching no pending
  document; an ordinary answer, not a Fault, so a duplicate confirmation is harmless.
* ``WYJATEK_NO_DOCUMENTS`` = 0: pobierzNastepny on an empty skrytka, sent as a soap:Server
  Fault whose detail is ``ob:Wyjatek`` with komunikat "Brak dokumentów do pobrania".
* ``WYJATEK_BAD_REQUEST`` = 3: soap:Client Fault (malformed XML, DTD present, unknown
  operation, request not valid against obiektypk.xsd, a skrytka address not
  /podmiot/skrytka: adresSkrytki, or adresOdpowiedzi of nadaj and dorecz).
* ``WYJATEK_INJECTED`` = 4: soap:Server Fault armed through ``POST /_sim/faults``.
* ``WYJATEK_SECURITY`` = 5: ``wsse:InvalidSecurity`` Fault (WS-Security 1.1's code for a
  bad Security header, a Client error): the request is unsigned, signed by an untrusted
  certificate, expired, or its Body or Timestamp is not what was signed.
* ``WYJATEK_SIGNATURE_INVALID`` = 6: soap:Client Fault from dorecz: the document carries
  no valid enveloped XAdES signature from a trusted signer; komunikat names the reason.

Every SOAP Fault is answered with HTTP 500, as SOAP 1.1 over HTTP requires.
"""

from __future__ import annotations

import mimetypes
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zeep
import zeep.exceptions
from flask import Flask, Response, jsonify, request
from lxml import etree

from hub.errors import SignatureInvalid
from hub.signing.keystore import SigningIdentity
from hub.signing.trust import TrustStore
from hub.signing.wssecurity import sign_envelope, signing_key, verify_envelope
from simulators.epuap.documents import generate_person, generate_pismo_ogolne, sha1_b64
from simulators.epuap.filerepo import register_filerepo
from simulators.epuap.mailboxes import (
    FaultKind,
    InjectedFault,
    PendingDocument,
    SimulatorState,
    mailbox_address,
    parse_mailbox_address,
)
from simulators.epuap.receipts import ReceiptSigner
from simulators.epuap.send import (
    DEFAULT_UPD_DELAY_S,
    OP_DORECZ,
    OP_NADAJ,
    RefusalKind,
    SendRefused,
    SendServices,
    document_trust,
)

__all__ = [
    "BINDING_NAME",
    "DEFAULT_WSDL",
    "DORECZYCIEL_PATH",
    "PULL_PATH",
    "SKRYTKA_PATH",
    "STATUS_OK",
    "STATUS_UNKNOWN_DOCUMENT",
    "WYJATEK_BAD_REQUEST",
    "WYJATEK_INJECTED",
    "WYJATEK_NO_DOCUMENTS",
    "WYJATEK_SECURITY",
    "WYJATEK_SIGNATURE_INVALID",
    "PullSoapService",
    "SoapContract",
    "SoapFaultError",
    "SoapReply",
    "SoapService",
    "WsSecurityPolicy",
    "create_app",
]

PULL_NS = "http://ws.epuap.gov.pl/pull/"
SKRYTKA_NS = "http://ws.epuap.gov.pl/skrytka/"
DORECZYCIEL_NS = "http://ws.epuap.gov.pl/doreczyciel/"
OB_NS = "http://wsdl.epuap.gov.pl/obiekty/"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
BINDING_NAME = f"{{{PULL_NS}}}pull"
SKRYTKA_BINDING = f"{{{SKRYTKA_NS}}}skrytkaBinding"
DORECZYCIEL_BINDING = f"{{{DORECZYCIEL_NS}}}doreczyciel"
PULL_PATH = "/pk_external_ws/services/pull"
SKRYTKA_PATH = "/pk_external_ws/services/skrytka"
DORECZYCIEL_PATH = "/pk_external_ws/services/doreczyciel"
WSDL_DIR = Path(__file__).resolve().parents[2] / "wsdl" / "epuap"
DEFAULT_WSDL = WSDL_DIR / "pull.wsdl"
SKRYTKA_WSDL = WSDL_DIR / "skrytka.wsdl"
DORECZYCIEL_WSDL = WSDL_DIR / "doreczyciel.wsdl"
# zeep ships py.typed but leaves most of its API unannotated: treat its objects as dynamic.
_ZEEP_CLIENT: Any = zeep.Client

STATUS_OK = 1
STATUS_UNKNOWN_DOCUMENT = 2
WYJATEK_NO_DOCUMENTS = 0
WYJATEK_BAD_REQUEST = 3
WYJATEK_INJECTED = 4
WYJATEK_SECURITY = 5
WYJATEK_SIGNATURE_INVALID = 6
_REFUSAL_KOD = {
    RefusalKind.BAD_ADDRESS: WYJATEK_BAD_REQUEST,
    RefusalKind.SIGNATURE_INVALID: WYJATEK_SIGNATURE_INVALID,
}

NO_DOCUMENTS_MESSAGE = "Brak dokumentów do pobrania"
OP_OCZEKUJACE = "oczekujaceDokumenty"
OP_POBIERZ = "pobierzNastepny"
OP_POTWIERDZ = "potwierdzOdebranie"
# Requests that never reach an operation are counted under this key in /_sim/stats.
INVALID_REQUEST_KEY = "_invalid"
TAMPERED_SUFFIX = " (zmienione po podpisaniu)"

MAX_DOCUMENTS_PER_MAILBOX = 100_000
MAX_ATTACHMENTS = 5
MAX_DELAY_S = 300.0
# TERYT codes: 2 digits for a voivodeship, 4 for a county, 7 for a gmina (WWPPGGR).
TERYT_LENGTHS = (2, 4, 7)
DOCUMENT_FILENAME = "pismo-ogolne.xml"
DOCUMENT_CONTENT_TYPE = "text/xml"
XML_CONTENT_TYPE = "text/xml; charset=utf-8"

#: An operation's business logic: zeep's parse of the request and the WS-Security
#: signer's subject (None when WS-Security is off) in, the answer's values out.
Handler = Callable[[Any, str | None], dict[str, Any]]


class SoapFaultError(Exception):
    """A SOAP 1.1 Fault to send back, with an ``ob:Wyjatek`` detail when ``kod`` is set."""

    def __init__(self, code: str, message: str, kod: int | None = WYJATEK_BAD_REQUEST) -> None:
        """Remember the fault.

        Args:
            code: SOAP 1.1 faultcode local name: "Client", "Server" or "VersionMismatch";
                or a prefixed WS-Security code such as "wsse:InvalidSecurity".
            message: faultstring, also the Wyjatek komunikat.
            kod: Wyjatek kod, or None for a Fault without detail.
        """
        super().__init__(message)
        self.code = code
        self.message = message
        self.kod = kod

    @property
    def qualified_code(self) -> str:
        """The faultcode as written: SOAP's own codes take the envelope's prefix."""
        return self.code if ":" in self.code else f"soap-env:{self.code}"


class AdminError(Exception):
    """A bad admin-API request, answered with HTTP 400 and a JSON error."""


@dataclass(frozen=True)
class SoapReply:
    """An HTTP answer produced by the SOAP service."""

    status: int
    body: bytes
    content_type: str = XML_CONTENT_TYPE


class WsSecurityPolicy:
    """WS-Security on the simulator's SOAP endpoints: off, or required both ways.

    On (a trust store is given): a request must be signed by a certificate one of the
    trusted CAs issued, and every answer is signed with the platform's identity.
    """

    def __init__(self, trusted_ca_pems: Sequence[bytes] | None, receipts: ReceiptSigner) -> None:
        """Configure the policy.

        Args:
            trusted_ca_pems: CA certificates whose signers are believed; None turns
                WS-Security off.
            receipts: holds the platform identity that signs answers.
        """
        # Parsed once: every request is checked against it.
        self._trust = (
            TrustStore.from_pems(list(trusted_ca_pems)) if trusted_ca_pems is not None else None
        )
        self._receipts = receipts
        self._key: Any = None
        self._key_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether requests are checked and answers signed."""
        return self._trust is not None

    def check(self, envelope: etree._Element) -> str | None:
        """Return the request signer's subject (None when off).

        Raises:
            SoapFaultError: wsse:InvalidSecurity, naming why the signature is refused.
        """
        if self._trust is None:
            return None
        try:
            certificate = verify_envelope(envelope, trust=self._trust)
        except SignatureInvalid as exc:
            raise SoapFaultError(
                "wsse:InvalidSecurity", f"WS-Security: {exc.reason}", WYJATEK_SECURITY
            ) from exc
        return certificate.subject.rfc4514_string()

    def sign(self, envelope: etree._Element) -> None:
        """Sign an answer in place (nothing when off)."""
        if self.enabled:
            sign_envelope(envelope, self._signing_key())

    def _signing_key(self) -> Any:
        """Load the platform's xmlsec key once: loading costs tens of milliseconds."""
        with self._key_lock:
            if self._key is None:
                self._key = signing_key(self._receipts.identity())
            return self._key


def _off() -> WsSecurityPolicy:
    """Return a policy that checks and signs nothing."""
    return WsSecurityPolicy(None, ReceiptSigner(None, None))


@dataclass(frozen=True)
class SoapContract:
    """One WSDL binding to serve: where the WSDL is, the binding's name, its namespace.

    SOAPAction headers are the namespace followed by the operation name.
    """

    wsdl_path: Path
    binding_name: str
    namespace: str


class SoapService:
    """One SOAP endpoint: bytes in, bytes out; business logic in per-operation handlers.

    Only operations with a handler are served; others of the binding (nadajAny, odbierz)
    are refused as unknown.
    """

    def __init__(
        self,
        state: SimulatorState,
        contract: SoapContract,
        handlers: Mapping[str, Handler],
        *,
        security: WsSecurityPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Load the WSDL once and index its operations.

        Args:
            state: counters and armed faults shared with the admin API.
            contract: the WSDL binding; obiektypk.xsd is expected next to the WSDL.
            handlers: business logic by operation name.
            security: WS-Security policy; off by default.
            sleep: how "delay" faults wait (replaceable so tests need not really sleep).
        """
        self._state = state
        self._sleep = sleep
        self._security = security if security is not None else _off()
        self._namespace = contract.namespace
        self._handlers = dict(handlers)
        client = _ZEEP_CLIENT(str(contract.wsdl_path))
        self._binding: Any = client.wsdl.bindings[contract.binding_name]
        self.operations: tuple[str, ...] = tuple(
            name for name in self._binding.all() if name in self._handlers
        )
        self._input_tags = {
            name: self._binding.get(name).input.body.qname.text for name in self.operations
        }
        self._op_by_tag = {tag: name for name, tag in self._input_tags.items()}
        self._wyjatek: Any = client.get_element(f"{{{OB_NS}}}Wyjatek")
        schema_path = contract.wsdl_path.parent / "obiektypk.xsd"
        self._schema = etree.XMLSchema(etree.parse(str(schema_path), _safe_parser()))
        # libxml2 validation contexts are not meant to be shared across threads.
        self._schema_lock = threading.Lock()

    def handle(self, data: bytes, soap_action: str | None) -> SoapReply:
        """Answer one POST to the endpoint.

        Args:
            data: the raw request body.
            soap_action: the SOAPAction header, quoted or not, or None.

        Returns:
            The HTTP status, body and content type to send.
        """
        try:
            envelope = _parse_envelope(data)
            operation = self._resolve_operation(envelope, soap_action)
        except SoapFaultError as fault:
            self._state.stats.count_request(INVALID_REQUEST_KEY)
            return self._fault_reply(fault)
        self._state.stats.count_request(operation)
        try:
            signer = self._security.check(envelope)
        except SoapFaultError as fault:
            return self._fault_reply(fault)
        injected = self._state.faults.take(operation)
        if injected is not None:
            reply = self._apply_injected(injected)
            if reply is not None:
                return reply
        status, answer = self._answer(operation, envelope, signer)
        tamper = injected is not None and injected.kind is FaultKind.BAD_SIGNATURE
        return self._reply(status, answer, tamper=tamper)

    def _answer(
        self, operation: str, envelope: etree._Element, signer: str | None
    ) -> tuple[int, etree._Element]:
        """Run the operation; return the HTTP status and the answer envelope (or Fault)."""
        try:
            request_value = self._deserialize(operation, envelope)
            values = self._handlers[operation](request_value, signer)
        except SoapFaultError as fault:
            return 500, self._fault_envelope(fault)
        except SendRefused as refusal:
            refused = SoapFaultError("Client", refusal.reason, _REFUSAL_KOD[refusal.kind])
            return 500, self._fault_envelope(refused)
        serialized = self._binding.get(operation).output.serialize(**values)
        return 200, serialized.content

    def _reply(self, status: int, envelope: etree._Element, *, tamper: bool = False) -> SoapReply:
        """Sign the answer (when WS-Security is on), optionally spoil it, and render it."""
        self._security.sign(envelope)
        if tamper:
            _tamper_body(envelope)
        return SoapReply(status, etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))

    def _apply_injected(self, injected: InjectedFault) -> SoapReply | None:
        """Carry out an armed fault; None means "now answer normally" (after a delay)."""
        if injected.kind is FaultKind.BAD_SIGNATURE:
            return None
        if injected.kind is FaultKind.DELAY:
            self._sleep(injected.delay_s)
            return None
        if injected.kind is FaultKind.SOAP_FAULT:
            fault = SoapFaultError("Server", "Symulowany błąd wewnętrzny ePUAP", WYJATEK_INJECTED)
            return self._fault_reply(fault)
        # http500 and drop_confirm: nothing is done, the client sees a non-SOAP error.
        text = "simulated HTTP 500"
        if injected.kind is FaultKind.DROP_CONFIRM:
            text = "simulated HTTP 500: confirmation lost, document kept"
        return SoapReply(500, text.encode(), "text/plain; charset=utf-8")

    def _resolve_operation(self, envelope: etree._Element, soap_action: str | None) -> str:
        """Name the operation from SOAPAction, else from the Body's first child element."""
        child = _body_child(envelope)
        operation = self._operation_from_action(soap_action)
        if operation is None:
            operation = self._op_by_tag.get(child.tag)
        if operation is None:
            raise SoapFaultError(
                "Client",
                f"Unknown operation: SOAPAction {soap_action!r}, body element {child.tag}",
            )
        if child.tag != self._input_tags[operation]:
            raise SoapFaultError(
                "Client",
                f"SOAPAction names {operation}, which expects {self._input_tags[operation]}, "
                f"but the body holds {child.tag}",
            )
        return operation

    def _operation_from_action(self, soap_action: str | None) -> str | None:
        """Return the operation named by a SOAPAction header, if it names a known one."""
        if not soap_action:
            return None
        action = soap_action.strip().strip('"')
        if not action.startswith(self._namespace):
            return None
        name = action[len(self._namespace) :]
        return name if name in self.operations else None

    def _deserialize(self, operation: str, envelope: etree._Element) -> Any:
        """Validate the ob: payload (Body and header parts) against obiektypk.xsd, then parse."""
        for part in _ob_parts(envelope):
            self._validate(part)
        try:
            return self._binding.get(operation).input.deserialize(envelope)
        except (zeep.exceptions.Error, ValueError, TypeError, IndexError) as exc:
            raise SoapFaultError("Client", f"Cannot read {operation} request: {exc}") from exc

    def _validate(self, part: etree._Element) -> None:
        """Refuse one ob: element that breaks obiektypk.xsd."""
        with self._schema_lock:
            valid = self._schema.validate(part)
            error = str(self._schema.error_log) if not valid else ""
        if not valid:
            raise SoapFaultError("Client", f"Request does not match obiektypk.xsd: {error}")

    def _fault_reply(self, fault: SoapFaultError) -> SoapReply:
        """Render a SOAP 1.1 Fault (HTTP 500), signed when WS-Security is on."""
        return self._reply(500, self._fault_envelope(fault))

    def _fault_envelope(self, fault: SoapFaultError) -> etree._Element:
        """Build a SOAP 1.1 Fault envelope, with ob:Wyjatek built from the schema."""
        nsmap = {"soap-env": SOAP11_NS, "ob": OB_NS}
        if fault.code.startswith("wsse:"):
            nsmap["wsse"] = WSSE_NS
        envelope = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap=nsmap)
        body = etree.SubElement(envelope, f"{{{SOAP11_NS}}}Body")
        fault_node = etree.SubElement(body, f"{{{SOAP11_NS}}}Fault")
        # SOAP 1.1 Fault children are unqualified.
        etree.SubElement(fault_node, "faultcode").text = fault.qualified_code
        etree.SubElement(fault_node, "faultstring").text = fault.message
        if fault.kod is not None:
            detail = etree.SubElement(fault_node, "detail")
            self._wyjatek.render(detail, self._wyjatek(kod=fault.kod, komunikat=fault.message))
        return envelope


class PullSoapService(SoapService):
    """The pull service: skrytki read by their owners (oczekujace, pobierz, potwierdz)."""

    def __init__(
        self,
        state: SimulatorState,
        wsdl_path: Path,
        sleep: Callable[[float], None] = time.sleep,
        *,
        security: WsSecurityPolicy | None = None,
    ) -> None:
        """Serve pull.wsdl over ``state``'s mailboxes.

        Args:
            state: mailboxes, counters and armed faults shared with the admin API.
            wsdl_path: pull.wsdl; obiektypk.xsd is expected next to it.
            sleep: how "delay" faults wait (replaceable so tests need not really sleep).
            security: WS-Security policy; off by default.
        """
        handlers: dict[str, Handler] = {
            OP_OCZEKUJACE: self._oczekujace,
            OP_POBIERZ: self._pobierz,
            OP_POTWIERDZ: self._potwierdz,
        }
        contract = SoapContract(wsdl_path, BINDING_NAME, PULL_NS)
        super().__init__(state, contract, handlers, security=security, sleep=sleep)

    def _oczekujace(self, request_value: Any, _signer: str | None) -> dict[str, Any]:
        """oczekujaceDokumenty: how many documents wait in the skrytka."""
        _check_pull_address(request_value)
        count = self._state.mailboxes.count(request_value.adresSkrytki)
        return {"status": _status(STATUS_OK, "OK"), "oczekujace": count}

    def _pobierz(self, request_value: Any, _signer: str | None) -> dict[str, Any]:
        """pobierzNastepny: the head of the queue, left in place until confirmed."""
        _check_pull_address(request_value)
        document = self._state.mailboxes.head(request_value.adresSkrytki)
        if document is None:
            raise SoapFaultError("Server", NO_DOCUMENTS_MESSAGE, WYJATEK_NO_DOCUMENTS)
        self._state.stats.count_served()
        podmiot, nazwa = parse_mailbox_address(document.address)
        return {
            "status": _status(STATUS_OK, "OK"),
            "danePodmiotu": _dane_podmiotu(document),
            "daneNadawcy": {"uzytkownik": document.sender_login},
            "dataNadania": document.enqueued_at,
            "nazwaSkrytki": nazwa,
            "adresSkrytki": mailbox_address(podmiot, nazwa),
            "adresOdpowiedzi": document.reply_address
            or mailbox_address(document.sender_login, "skrytka"),
            "czyTestowe": False,
            "daneDodatkowe": document.extra_data,
            "dokument": {
                "nazwaPliku": document.filename,
                "typPliku": document.content_type,
                "zawartosc": document.content,
            },
        }

    def _potwierdz(self, request_value: Any, _signer: str | None) -> dict[str, Any]:
        """potwierdzOdebranie: drop the pending document whose SHA-1 matches skrot."""
        _check_pull_address(request_value)
        removed = self._state.mailboxes.confirm(request_value.adresSkrytki, request_value.skrot)
        self._state.stats.count_confirmation(known=removed is not None)
        if removed is None:
            message = f"Brak dokumentu o skrócie {request_value.skrot} w skrytce"
            return {"status": _status(STATUS_UNKNOWN_DOCUMENT, message)}
        return {"status": _status(STATUS_OK, "OK")}


def _dane_podmiotu(document: PendingDocument) -> dict[str, Any]:
    """Return DanePodmiotuTyp of a document's sender; absent parts are left out."""
    optional = {
        "imieSkrot": document.sender_first_name,
        "nazwiskoNazwa": document.sender_last_name,
        "pesel": document.sender_pesel,
    }
    return {
        "identyfikator": document.sender_login,
        "typOsoby": document.sender_type,
        **{name: value for name, value in optional.items() if value},
        "zgoda": True,
    }


def _tamper_body(envelope: etree._Element) -> None:
    """Change the first text in the Body after signing: what a meddler in the middle does."""
    body = envelope.find(f"{{{SOAP11_NS}}}Body")
    if body is None:
        return
    for element in body.iter():
        if element.text and element.text.strip():
            element.text += TAMPERED_SUFFIX
            return


def _ob_parts(envelope: etree._Element) -> list[etree._Element]:
    """Return the Body's payload and every ob: header part: what obiektypk.xsd covers."""
    parts = [_body_child(envelope)]
    header = envelope.find(f"{{{SOAP11_NS}}}Header")
    if header is not None:
        parts += [
            child
            for child in header.iterchildren(tag=etree.Element)
            if etree.QName(child).namespace == OB_NS
        ]
    return [part for part in parts if etree.QName(part).namespace == OB_NS]


def _check_pull_address(request_value: Any) -> None:
    """Refuse a pull request whose adresSkrytki disagrees with podmiot and nazwaSkrytki."""
    _check_address(request_value.podmiot, request_value.nazwaSkrytki, request_value.adresSkrytki)


def _safe_parser() -> etree.XMLParser:
    """Return a fresh parser that fetches nothing and expands no entities.

    A new one per call because lxml parsers must not be shared between threads.
    """
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def _parse_envelope(data: bytes) -> etree._Element:
    """Parse a SOAP 1.1 envelope, refusing malformed XML, DTDs and other SOAP versions."""
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFaultError("Client", f"Request is not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        # SOAP 1.1 forbids DTDs; refusing them also shuts out entity tricks.
        raise SoapFaultError("Client", "A SOAP message must not contain a DTD")
    qname = etree.QName(root)
    if qname.localname == "Envelope" and qname.namespace == SOAP12_NS:
        raise SoapFaultError("VersionMismatch", "Only SOAP 1.1 envelopes are supported")
    if root.tag != f"{{{SOAP11_NS}}}Envelope":
        raise SoapFaultError("Client", f"Root element is {root.tag}, not a SOAP 1.1 Envelope")
    return root


def _body_child(envelope: etree._Element) -> etree._Element:
    """Return the first element inside soap:Body."""
    body = envelope.find(f"{{{SOAP11_NS}}}Body")
    if body is None:
        raise SoapFaultError("Client", "SOAP envelope has no Body")
    for child in body.iterchildren(tag=etree.Element):
        return child
    raise SoapFaultError("Client", "SOAP Body is empty: no operation requested")


def _check_address(podmiot: str, nazwa_skrytki: str, adres_skrytki: str) -> None:
    """Refuse a request whose adresSkrytki is not "/" + podmiot + "/" + nazwaSkrytki."""
    expected = mailbox_address(podmiot, nazwa_skrytki)
    if adres_skrytki != expected:
        raise SoapFaultError(
            "Client",
            f"adresSkrytki {adres_skrytki!r} does not match podmiot and nazwaSkrytki "
            f"(expected {expected!r})",
        )


def _status(kod: int, komunikat: str) -> dict[str, Any]:
    """Return a StatusTyp value."""
    return {"kod": kod, "komunikat": komunikat}


# ---------------------------------------------------------------- admin API helpers


def _json_object() -> dict[str, Any]:
    """Return the request's JSON body, which must be an object."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise AdminError("request body must be a JSON object")
    return payload


def _int_field(data: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """Return an integer field within [low, high] (bools are not integers here)."""
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AdminError(f"{name} must be an integer between {low} and {high}")
    return value


def _str_field(data: dict[str, Any], name: str) -> str:
    """Return a required non-empty string field."""
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise AdminError(f"{name} must be a non-empty string")
    return value


def _address(value: str) -> str:
    """Validate a skrytka address for the admin API."""
    try:
        parse_mailbox_address(value)
    except ValueError as exc:
        raise AdminError(str(exc)) from exc
    return value


@dataclass(frozen=True)
class _MailboxSpec:
    """One entry of POST /_sim/documents "mailboxes"."""

    address: str
    office_name: str
    office_teryt: str
    count: int


def _mailbox_spec(item: Any) -> _MailboxSpec:
    """Validate one "mailboxes" entry."""
    if not isinstance(item, dict):
        raise AdminError("each mailboxes entry must be an object")
    teryt = _str_field(item, "office_teryt")
    if len(teryt) not in TERYT_LENGTHS or not teryt.isdigit():
        raise AdminError(f"office_teryt must be a TERYT code of 2, 4 or 7 digits, got {teryt!r}")
    return _MailboxSpec(
        address=_address(_str_field(item, "address")),
        office_name=_str_field(item, "office_name"),
        office_teryt=teryt,
        count=_int_field(item, "count", 1, 0, MAX_DOCUMENTS_PER_MAILBOX),
    )


def _generate(
    specs: list[_MailboxSpec], seed: int | None, attachments: int
) -> list[PendingDocument]:
    """Generate the pending documents asked for, in request order."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    pending = []
    for spec in specs:
        for _ in range(spec.count):
            generated = generate_pismo_ogolne(
                rng,
                office_name=spec.office_name,
                office_teryt=spec.office_teryt,
                attachments=attachments,
                sent_at=now,
            )
            pending.append(
                PendingDocument(
                    address=spec.address,
                    content=generated.content,
                    sha1_b64=sha1_b64(generated.content),
                    enqueued_at=now,
                    filename=DOCUMENT_FILENAME,
                    content_type=DOCUMENT_CONTENT_TYPE,
                    title=generated.title,
                    sender_login=generated.sender_login,
                    sender_first_name=generated.sender_first_name,
                    sender_last_name=generated.sender_last_name,
                    sender_pesel=generated.sender_pesel,
                )
            )
    return pending


def _raw_document(address: str, content: bytes, filename: str) -> PendingDocument:
    """Wrap caller-supplied bytes as a pending document from a synthetic sender."""
    digest = sha1_b64(content)
    # Seeded by the content so the same bytes always come from the same invented person.
    person = generate_person(random.Random(digest))
    return PendingDocument(
        address=address,
        content=content,
        sha1_b64=digest,
        enqueued_at=datetime.now(UTC),
        filename=filename,
        content_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
        title=filename,
        sender_login=person.login,
        sender_first_name=person.first_name,
        sender_last_name=person.last_name,
        sender_pesel=person.pesel,
    )


def _upd_request(data: dict[str, Any]) -> tuple[bool | None, float | None]:
    """Validate POST /_sim/upd; return (hold, delay_s), None where not given."""
    if "hold" not in data and "delay_s" not in data:
        raise AdminError("give hold (true or false), delay_s (seconds), or both")
    hold = data.get("hold")
    if hold is not None and not isinstance(hold, bool):
        raise AdminError("hold must be true or false")
    delay = data.get("delay_s")
    if delay is not None and not _is_delay(delay):
        raise AdminError(f"delay_s must be a number between 0 and {MAX_DELAY_S}")
    return hold, float(delay) if delay is not None else None


def _is_delay(value: Any) -> bool:
    """Whether ``value`` is a JSON number of seconds within [0, MAX_DELAY_S]."""
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= MAX_DELAY_S
    )


def _fault_request(
    data: dict[str, Any], operations: tuple[str, ...]
) -> tuple[str, InjectedFault, int]:
    """Validate POST /_sim/faults; return (operation, fault, times)."""
    operation = data.get("operation")
    if operation not in operations:
        raise AdminError(f"operation must be one of {', '.join(operations)}")
    try:
        kind = FaultKind(str(data.get("kind")))
    except ValueError as exc:
        raise AdminError(f"kind must be one of {', '.join(k.value for k in FaultKind)}") from exc
    if kind is FaultKind.DROP_CONFIRM and operation != OP_POTWIERDZ:
        raise AdminError(f"drop_confirm only applies to {OP_POTWIERDZ}")
    delay = data.get("delay_s", 1.0)
    if not _is_delay(delay):
        raise AdminError(f"delay_s must be a number between 0 and {MAX_DELAY_S}")
    times = _int_field(data, "times", 1, 1, 1_000_000)
    return operation, InjectedFault(kind, float(delay)), times


# ---------------------------------------------------------------- the app


def create_app(
    state: SimulatorState | None = None,
    *,
    wsdl_path: Path | str = DEFAULT_WSDL,
    skrytka_wsdl_path: Path | str = SKRYTKA_WSDL,
    doreczyciel_wsdl_path: Path | str = DORECZYCIEL_WSDL,
    sleep: Callable[[float], None] = time.sleep,
    trusted_ca_pems: Sequence[bytes] | None = None,
    identity: SigningIdentity | None = None,
    upd_delay_s: float = DEFAULT_UPD_DELAY_S,
) -> Flask:
    """Build the simulator's Flask app.

    Args:
        state: shared state; a fresh one by default (exposed as
            ``app.extensions["epuap_simulator"]``).
        wsdl_path: the pull.wsdl to serve.
        skrytka_wsdl_path: the skrytka.wsdl to serve.
        doreczyciel_wsdl_path: the doreczyciel.wsdl to serve.
        sleep: how injected delays wait.
        trusted_ca_pems: CA certificates whose signers are believed, both for
            WS-Security on every call and for XAdES on dorecz documents; None turns
            WS-Security off (and dorecz then takes any well-made signature).
        identity: the platform's certificate and key, signing answers, UPPs and UPDs;
            None makes a throwaway one when first needed.
        upd_delay_s: how long after dorecz the simulated addressee picks up.

    Returns:
        The WSGI app: SOAP at PULL_PATH, SKRYTKA_PATH and DORECZYCIEL_PATH, admin JSON
        under /_sim/.
    """
    sim_state = state if state is not None else SimulatorState()
    receipts = ReceiptSigner(identity, None)
    security = WsSecurityPolicy(trusted_ca_pems, receipts)
    sending = SendServices(sim_state, receipts, document_trust(trusted_ca_pems), upd_delay_s)
    services = {
        PULL_PATH: PullSoapService(sim_state, Path(wsdl_path), sleep, security=security),
        SKRYTKA_PATH: SoapService(
            sim_state,
            SoapContract(Path(skrytka_wsdl_path), SKRYTKA_BINDING, SKRYTKA_NS),
            {OP_NADAJ: sending.nadaj},
            security=security,
            sleep=sleep,
        ),
        DORECZYCIEL_PATH: SoapService(
            sim_state,
            SoapContract(Path(doreczyciel_wsdl_path), DORECZYCIEL_BINDING, DORECZYCIEL_NS),
            {OP_DORECZ: sending.dorecz},
            security=security,
            sleep=sleep,
        ),
    }
    app = Flask(__name__)
    app.extensions["epuap_simulator"] = sim_state
    for path, service in services.items():
        _register_soap(app, path, service)
    operations = tuple(name for service in services.values() for name in service.operations)
    _register_admin(app, sim_state, operations, sending)
    _register_send_admin(app, sim_state, sending, receipts, security)
    register_filerepo(app, security)
    return app


def _register_soap(app: Flask, path: str, service: SoapService) -> None:
    """Add one SOAP endpoint."""

    def endpoint() -> Response:
        reply = service.handle(request.get_data(), request.headers.get("SOAPAction"))
        return Response(reply.body, status=reply.status, content_type=reply.content_type)

    app.add_url_rule(path, endpoint=f"soap{path}", view_func=endpoint, methods=["POST"])


def _register_admin(
    app: Flask, state: SimulatorState, operations: tuple[str, ...], sending: SendServices
) -> None:
    """Add the /_sim/ JSON endpoints of the mailboxes, counters and faults."""

    @app.errorhandler(AdminError)
    def bad_request(error: AdminError) -> tuple[Response, int]:
        return jsonify({"error": str(error)}), 400

    @app.post("/_sim/documents")
    def add_documents() -> tuple[Response, int]:
        data = _json_object()
        raw_specs = data.get("mailboxes")
        if not isinstance(raw_specs, list) or not raw_specs:
            raise AdminError("mailboxes must be a non-empty list")
        specs = [_mailbox_spec(item) for item in raw_specs]
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise AdminError("seed must be an integer or null")
        attachments = _int_field(data, "attachments", 1, 0, MAX_ATTACHMENTS)
        pending = _generate(specs, seed, attachments)
        state.mailboxes.enqueue(pending)
        documents = [
            {"address": d.address, "sha1_b64": d.sha1_b64, "title": d.title} for d in pending
        ]
        return jsonify({"enqueued": len(pending), "documents": documents}), 201

    @app.post("/_sim/mailboxes/<path:address>/raw")
    def add_raw(address: str) -> tuple[Response, int]:
        full_address = _address("/" + address.lstrip("/"))
        filename = request.args.get("filename") or "dokument.xml"
        document = _raw_document(full_address, request.get_data(), filename)
        state.mailboxes.enqueue([document])
        return jsonify({"enqueued": 1, "sha1_b64": document.sha1_b64}), 201

    @app.get("/_sim/stats")
    def stats() -> Response:
        by_mailbox = state.mailboxes.pending_by_mailbox()
        return jsonify(
            {"pending": sum(by_mailbox.values()), "pending_by_mailbox": by_mailbox}
            | state.stats.snapshot()
        )

    @app.get("/_sim/faults")
    def list_faults() -> Response:
        return jsonify({"armed": state.faults.snapshot()})

    @app.post("/_sim/faults")
    def arm_fault() -> tuple[Response, int]:
        operation, fault, times = _fault_request(_json_object(), operations)
        state.faults.arm(operation, fault, times)
        return jsonify({"armed": state.faults.snapshot()}), 201

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        state.faults.clear()
        return jsonify({"armed": {}})

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        sending.reset()
        return jsonify({"reset": True})


def _register_send_admin(
    app: Flask,
    state: SimulatorState,
    sending: SendServices,
    receipts: ReceiptSigner,
    security: WsSecurityPolicy,
) -> None:
    """Add the /_sim/ JSON endpoints of nadaj and dorecz: the sent log and the UPD courier."""

    @app.get("/_sim/sent")
    def sent() -> Response:
        return jsonify({"sent": state.sent.snapshot()})

    @app.get("/_sim/upd")
    def upd_settings() -> Response:
        return jsonify(sending.courier.snapshot())

    @app.post("/_sim/upd")
    def configure_upd() -> Response:
        hold, delay_s = _upd_request(_json_object())
        released = sending.courier.configure(hold=hold, delay_s=delay_s)
        return jsonify({"released": released} | sending.courier.snapshot())

    @app.post("/_sim/upd/release")
    def release_upd() -> Response:
        released = sending.courier.release()
        return jsonify({"released": released} | sending.courier.snapshot())

    @app.get("/_sim/identity")
    def platform_identity() -> Response:
        identity = receipts.identity()
        ca_pem = receipts.ca_certificate_pem()
        return jsonify(
            {
                "subject": identity.subject,
                "certificate_pem": identity.certificate_pem.decode("ascii"),
                "ca_certificate_pem": ca_pem.decode("ascii") if ca_pem is not None else None,
                "wssecurity": security.enabled,
            }
        )
