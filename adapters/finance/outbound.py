"""Registering documents in an office's finance system over SOAP (``wsdl/legacy/finance.wsdl``).

One operation, ``ZarejestrujDokument``, carries the document (base64) with its kind
(``FAKTURA``, ``PLATNOSC`` or ``BUDZET``), the office and the case. ``KluczIdempotencji``
is the envelope id, so a retry after a lost answer registers nothing twice: the system
answers with its first registration and ``CzyDuplikat`` true.

The document's kind comes from the envelope header ``finance-kind``, else from the
endpoint option ``document_kinds`` (a table from document type to kind), else from the
option ``default_kind``; a document of no known kind is refused for good.

Region example::

    [[systems]]
    name = "finanse"
    kind = "finance-soap"
    url = "http://fk.example.gov.pl/system-finansowy/v1"
    [systems.options]
    default_kind = "FAKTURA"
    document_kinds = { "urn:hub:legacy:platnosc:1" = "PLATNOSC" }

Faults: soap:Client (the request can never succeed) → ``PermanentDeliveryError``;
soap:Server, HTTP 5xx/429, timeouts and refused connections → ``TransientDeliveryError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
from lxml import etree
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential
from zeep.transports import Transport

from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from hub.http import http_session
from hub.region import EndpointConfig
from hub.settings import Settings

FINANCE_WSDL = Path(__file__).resolve().parents[2] / "wsdl" / "legacy" / "finance.wsdl"
FIN_NS = "http://finanse.legacy.gov.pl/system-finansowy/v1"
FINANCE_BINDING = f"{{{FIN_NS}}}SystemFinansowyBinding"
DOCUMENT_KINDS = frozenset({"FAKTURA", "PLATNOSC", "BUDZET"})
KIND_HEADER = "finance-kind"


def finance_client(url: str, session: requests.Session, timeout_s: float) -> Any:
    """A zeep service proxy for the finance system at ``url``, read from the local WSDL.

    DTDs, entities and external references are refused; ``session`` (keep-alive) carries
    every call.
    """
    transport = Transport(session=session, timeout=timeout_s, operation_timeout=timeout_s)
    settings = zeep.Settings(
        strict=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    client = zeep.Client(str(FINANCE_WSDL), transport=transport, settings=settings)
    return client.create_service(FINANCE_BINDING, url)


class FinanceSoapOutbound:
    """The ``finance-soap`` outbound kind: one office's finance system."""

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        self._endpoint = endpoint
        self._timeout_s = endpoint.timeout_s or settings.delivery_timeout_s
        self._kinds = _document_kinds(endpoint)
        self._default_kind = _checked_kind(endpoint, endpoint.options.get("default_kind"))
        self._session: requests.Session | None = None
        self._service: Any = None

    def setup(self) -> None:
        """Read the WSDL once and open the HTTP session."""
        self._session = http_session(self._endpoint.url)
        self._service = finance_client(self._endpoint.url, self._session, self._timeout_s)

    def stop(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Register ``envelope``; its registration number is the delivery's reference.

        Raises:
            TransientDeliveryError: unreachable, timed out, HTTP 5xx/429 or a soap:Server Fault.
            PermanentDeliveryError: no document kind, a soap:Client Fault, or an unreadable answer.
        """
        kind = self._kind_of(envelope)
        with _translate_soap_errors(self._endpoint.name):
            answer = self._register(envelope, kind)
        return DeliveryReceipt(
            endpoint=self._endpoint.name,
            external_reference=str(answer.NumerRejestracyjny),
            duplicate=bool(answer.CzyDuplikat),
        )

    def _kind_of(self, envelope: Envelope) -> str:
        kind = (
            envelope.headers.get(KIND_HEADER)
            or self._kinds.get(envelope.document_type)
            or self._default_kind
        )
        if kind not in DOCUMENT_KINDS:
            raise PermanentDeliveryError(
                f"{self._endpoint.name}: no finance document kind for document type "
                f"{envelope.document_type!r} (header {KIND_HEADER}={kind!r}; "
                f"known kinds: {sorted(DOCUMENT_KINDS)})"
            )
        return kind

    @retry(
        retry=retry_if_exception_type(requests.ConnectionError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    )
    def _register(self, envelope: Envelope, kind: str) -> Any:
        # Only connection failures are retried in-call: the request never reached the system.
        assert self._service is not None, "setup() was not called"
        return self._service.ZarejestrujDokument(
            KluczIdempotencji=str(envelope.envelope_id),
            Urzad=envelope.destination.office,
            RodzajDokumentu=kind,
            IdentyfikatorSprawy=envelope.correlation_id,
            TypDokumentu=envelope.document_type,
            TypTresci=envelope.content_type,
            Tresc=envelope.body,
        )


def _document_kinds(endpoint: EndpointConfig) -> dict[str, str]:
    table = endpoint.options.get("document_kinds", {})
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"endpoint {endpoint.name}: document_kinds must be a table")
    return {
        str(document_type): _checked_kind(endpoint, kind) or ""
        for document_type, kind in table.items()
    }


def _checked_kind(endpoint: EndpointConfig, kind: object) -> str | None:
    if kind is None:
        return None
    if kind not in DOCUMENT_KINDS:
        raise ConfigurationError(
            f"endpoint {endpoint.name}: {kind!r} is not a finance document kind "
            f"({', '.join(sorted(DOCUMENT_KINDS))})"
        )
    return str(kind)


def fault_reason(fault: zeep.exceptions.Fault) -> str:
    """The Fault's code and message, with the system's own ``Kod`` when its detail has one."""
    kod = None
    if fault.detail is not None:
        kod = fault.detail.findtext(f".//{{{FIN_NS}}}Kod")
    suffix = f" (Kod {kod})" if kod else ""
    return f"{fault.code}: {fault.message}{suffix}"


@contextlib.contextmanager
def _translate_soap_errors(endpoint: str) -> Iterator[None]:
    try:
        yield
    except zeep.exceptions.Fault as exc:
        reason = f"{endpoint}: the finance system answered a fault {fault_reason(exc)}"
        if exc.code and "Client" in str(exc.code):
            raise PermanentDeliveryError(reason) from exc
        raise TransientDeliveryError(reason) from exc
    except zeep.exceptions.TransportError as exc:
        reason = f"{endpoint}: the finance system answered HTTP {exc.status_code}"
        if exc.status_code >= 500 or exc.status_code == 429:
            raise TransientDeliveryError(reason) from exc
        raise PermanentDeliveryError(reason) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientDeliveryError(
            f"{endpoint}: the finance system is unreachable: {exc}"
        ) from exc
    except (zeep.exceptions.Error, etree.LxmlError, ValueError) as exc:
        raise PermanentDeliveryError(f"{endpoint}: unreadable exchange: {exc}") from exc
