"""The finance simulator: ``finance.wsdl`` served from Flask through zeep's binding objects.

Requests are checked against ``finance.xsd`` and parsed with
``binding.get(op).input.deserialize``; answers are built with
``binding.get(op).output.serialize``, so this server and the hub's zeep client read the
very same contract (DESIGN.md, "One contract for both ends of a SOAP call").

- ``POST /system-finansowy/v1``: SOAP 1.1, operations ``ZarejestrujDokument`` (one
  registration per ``KluczIdempotencji``; a repeated key answers the first registration
  with ``CzyDuplikat`` true) and ``StatusDokumentu``.
- Faults carry ``fin:BladSystemu``: soap:Client with ``Kod`` 100 (not valid against the
  schema, not SOAP 1.1, a DTD), 101 (unknown operation), 102 (refused by the system,
  injected), 103 (empty content); soap:Server with 500 (temporarily unavailable,
  injected). Every Fault is HTTP 500, as SOAP 1.1 over HTTP requires.
- Admin: ``GET /_sim/stats``, ``GET /_sim/received`` (per idempotency key: arrivals and
  the one record), ``POST /_sim/faults`` ``{"kind": "down"|"slow"|"transient"|
  "permanent"|"lose_answer", "times": n, "delay_s": s}``, ``DELETE /_sim/faults``,
  ``POST /_sim/reset``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zeep
import zeep.exceptions
from flask import Flask, Response, jsonify, request
from lxml import etree

from simulators.finance.ledger import Fault, FaultKind, Ledger

FIN_NS = "http://finanse.legacy.gov.pl/system-finansowy/v1"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
BINDING_NAME = f"{{{FIN_NS}}}SystemFinansowyBinding"
SERVICE_PATH = "/system-finansowy/v1"
WSDL_PATH = Path(__file__).resolve().parents[2] / "wsdl" / "legacy" / "finance.wsdl"
SCHEMA_PATH = WSDL_PATH.with_name("finance.xsd")
XML_CONTENT_TYPE = "text/xml; charset=utf-8"

OP_REGISTER = "ZarejestrujDokument"
OP_STATUS = "StatusDokumentu"

KOD_INVALID_REQUEST = 100
KOD_UNKNOWN_OPERATION = 101
KOD_REFUSED = 102
KOD_EMPTY_CONTENT = 103
KOD_UNAVAILABLE = 500

# zeep ships py.typed but leaves most of its API unannotated: treat its objects as dynamic.
_ZEEP_CLIENT: Any = zeep.Client


class SoapFaultError(Exception):
    """A SOAP 1.1 Fault to answer, with ``fin:BladSystemu`` (kod, komunikat) as detail."""

    def __init__(self, code: str, message: str, kod: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kod = kod


@dataclass(frozen=True)
class SoapReply:
    """An HTTP answer of the SOAP endpoint."""

    status: int
    body: bytes
    content_type: str = XML_CONTENT_TYPE


class FinanceSoapService:
    """``SystemFinansowy`` over a :class:`Ledger`: bytes in, bytes out."""

    def __init__(
        self, ledger: Ledger, sleep: Callable[[float], None] = time.sleep, wsdl: Path = WSDL_PATH
    ) -> None:
        """Load the WSDL and the schema once.

        Args:
            ledger: registrations and armed faults, shared with the admin API.
            sleep: how "slow" and "lose_answer" faults wait.
            wsdl: finance.wsdl; finance.xsd is expected beside it.
        """
        self._ledger = ledger
        self._sleep = sleep
        client = _ZEEP_CLIENT(str(wsdl))
        self._binding: Any = client.wsdl.bindings[BINDING_NAME]
        self._fault_detail: Any = client.get_element(f"{{{FIN_NS}}}BladSystemu")
        self._handlers: dict[str, Callable[[Any], dict[str, Any]]] = {
            OP_REGISTER: self._register,
            OP_STATUS: self._status,
        }
        self._op_by_tag = {
            self._binding.get(name).input.body.qname.text: name for name in self._handlers
        }
        self._schema = etree.XMLSchema(etree.parse(str(wsdl.with_name("finance.xsd"))))
        # libxml2 validation contexts are not meant to be shared across threads.
        self._schema_lock = threading.Lock()

    def handle(self, data: bytes) -> SoapReply:
        """Answer one POST: the operation's answer, or a Fault."""
        fault = self._ledger.next_fault()
        if fault is not None and fault.kind is FaultKind.DOWN:
            return SoapReply(503, b"system finansowy niedostepny", "text/plain; charset=utf-8")
        if fault is not None and fault.kind is FaultKind.SLOW:
            self._sleep(fault.delay_s)
        try:
            reply = SoapReply(200, self._answer(data, fault))
        except SoapFaultError as error:
            reply = SoapReply(500, self._fault_envelope(error))
        if fault is not None and fault.kind is FaultKind.LOSE_ANSWER:
            # Registered, but the answer comes after the caller stopped waiting.
            self._sleep(fault.delay_s)
        return reply

    def _answer(self, data: bytes, fault: Fault | None) -> bytes:
        envelope = _parse_envelope(data)
        operation = self._operation(envelope)
        if fault is not None and fault.kind is FaultKind.TRANSIENT:
            raise SoapFaultError("Server", "System chwilowo niedostępny", KOD_UNAVAILABLE)
        if fault is not None and fault.kind is FaultKind.PERMANENT:
            raise SoapFaultError("Client", "System odmówił przyjęcia dokumentu", KOD_REFUSED)
        values = self._handlers[operation](self._deserialize(operation, envelope))
        answer = self._binding.get(operation).output.serialize(**values).content
        return etree.tostring(answer, xml_declaration=True, encoding="utf-8")

    def _operation(self, envelope: etree._Element) -> str:
        body = envelope.find(f"{{{SOAP11_NS}}}Body")
        child = None if body is None else next(iter(body), None)
        operation = None if child is None else self._op_by_tag.get(child.tag)
        if operation is None:
            tag = None if child is None else child.tag
            raise SoapFaultError("Client", f"Nieznana operacja: {tag}", KOD_UNKNOWN_OPERATION)
        return operation

    def _deserialize(self, operation: str, envelope: etree._Element) -> Any:
        body = envelope.find(f"{{{SOAP11_NS}}}Body")
        assert body is not None  # _operation found its child
        with self._schema_lock:
            valid = self._schema.validate(body[0])
            error = "" if valid else str(self._schema.error_log)
        if not valid:
            raise SoapFaultError(
                "Client", f"Żądanie niezgodne z finance.xsd: {error}", KOD_INVALID_REQUEST
            )
        try:
            return self._binding.get(operation).input.deserialize(envelope)
        except (zeep.exceptions.Error, ValueError, TypeError) as exc:
            raise SoapFaultError(
                "Client", f"Nie można odczytać żądania: {exc}", KOD_INVALID_REQUEST
            ) from exc

    def _register(self, value: Any) -> dict[str, Any]:
        if not value.Tresc:
            raise SoapFaultError("Client", "Dokument nie ma treści", KOD_EMPTY_CONTENT)
        registration, new = self._ledger.register(
            value.KluczIdempotencji, value.Urzad, value.RodzajDokumentu, value.IdentyfikatorSprawy
        )
        return {
            "NumerRejestracyjny": registration.number,
            "CzyDuplikat": not new,
            "DataRejestracji": registration.registered_at,
        }

    def _status(self, value: Any) -> dict[str, Any]:
        registration = self._ledger.registration(value.KluczIdempotencji)
        if registration is None:
            return {"Status": "NIEZNANY"}
        return {
            "Status": "ZAREJESTROWANY",
            "NumerRejestracyjny": registration.number,
            "DataZmiany": registration.registered_at,
        }

    def _fault_envelope(self, error: SoapFaultError) -> bytes:
        envelope = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"soap-env": SOAP11_NS})
        body = etree.SubElement(envelope, f"{{{SOAP11_NS}}}Body")
        fault = etree.SubElement(body, f"{{{SOAP11_NS}}}Fault")
        # SOAP 1.1 Fault children are unqualified.
        etree.SubElement(fault, "faultcode").text = f"soap-env:{error.code}"
        etree.SubElement(fault, "faultstring").text = error.message
        detail = etree.SubElement(fault, "detail")
        self._fault_detail.render(
            detail, self._fault_detail(Kod=error.kod, Komunikat=error.message)
        )
        return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def create_app(ledger: Ledger | None = None, sleep: Callable[[float], None] = time.sleep) -> Flask:
    """The finance simulator as a Flask app."""
    app = Flask("finance-simulator")
    state = ledger or Ledger()
    service = FinanceSoapService(state, sleep)
    app.config["LEDGER"] = state

    @app.post(SERVICE_PATH)
    def soap() -> Response:
        reply = service.handle(request.get_data())
        return Response(reply.body, status=reply.status, content_type=reply.content_type)

    @app.get(SERVICE_PATH)
    def wsdl() -> Response:
        # ?wsdl and ?xsd for people who look; the hub reads its own copy, never this one.
        path = SCHEMA_PATH if "xsd" in request.args else WSDL_PATH
        return Response(path.read_bytes(), content_type=XML_CONTENT_TYPE)

    @app.get("/_sim/stats")
    def stats() -> Response:
        return jsonify(state.stats())

    @app.get("/_sim/received")
    def received() -> Response:
        return jsonify(state.received())

    @app.post("/_sim/faults")
    def arm_fault() -> tuple[Response, int]:
        try:
            fault = Fault.from_json(request.get_json(force=True))
        except (KeyError, ValueError, TypeError) as exc:
            return jsonify({"error": f"bad fault: {exc}"}), 400
        state.arm(fault)
        return jsonify({"armed": fault.kind.value}), 201

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        state.clear_faults()
        return jsonify({"faults": 0})

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"reset": True})

    return app


def _parse_envelope(data: bytes) -> etree._Element:
    """Parse a SOAP 1.1 envelope safely, refusing DTDs and anything else."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise SoapFaultError(
            "Client", f"Żądanie nie jest poprawnym XML: {exc}", KOD_INVALID_REQUEST
        ) from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise SoapFaultError("Client", "Komunikat SOAP nie może zawierać DTD", KOD_INVALID_REQUEST)
    if root.tag != f"{{{SOAP11_NS}}}Envelope":
        raise SoapFaultError(
            "Client", f"Korzeń {root.tag} nie jest kopertą SOAP 1.1", KOD_INVALID_REQUEST
        )
    return root
