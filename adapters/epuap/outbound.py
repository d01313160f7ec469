"""Sending an office's letters and decisions to a citizen's ePUAP mailbox.

Two services send: WS-Skrytka ``nadaj`` (the platform answers with a UPP, urzędowe
poświadczenie przedłożenia, its proof of submission) and WS-Doręczyciel ``dorecz``
(for a document that must carry the office's XAdES signature; the UPD, urzędowe
poświadczenie doręczenia, arrives later in the office's own mailbox, when the citizen
has collected it, and is linked to the delivery by the ``hub-receipts`` kind).

Every call carries WS-Security signed with the sending office's certificate, and the
platform's answer must be signed with the platform's certificate. A UPP is verified
against the trust store and kept as the delivery's evidence.

The recipient's mailbox comes from the envelope header ``epuap-recipient``
(``/podmiot/skrytka``); the office's own mailbox is the reply address.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import requests
import zeep.exceptions
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from adapters.epuap.attachments import offload_large_attachments
from adapters.epuap.contract import (
    DORECZYCIEL_BINDING,
    DORECZYCIEL_WSDL,
    FILEREPO_BINDING,
    FILEREPO_WSDL,
    SKRYTKA_BINDING,
    SKRYTKA_WSDL,
    STATUS_OK,
    soap_client,
)
from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import (
    ConfigurationError,
    MalformedDocument,
    PermanentDeliveryError,
    SchemaViolation,
    SignatureInvalid,
    TransientDeliveryError,
)
from hub.logging import get_logger
from hub.receipts import Evidence
from hub.region import ESP_ADDRESS, EndpointConfig, Office
from hub.settings import Settings
from hub.signing.keystore import Keystore
from hub.signing.trust import TrustStore, platform_certificate_path
from hub.signing.wssecurity import WsSecurity
from hub.signing.xades import verify_document

log = get_logger(__name__)

RECIPIENT_HEADER = "epuap-recipient"
# Attachments above this travel through FileRepo (endpoint option large_attachment_bytes).
DEFAULT_LARGE_ATTACHMENT_BYTES = 5 * 1024 * 1024
UPP_KIND = "UPP"


class EpuapSkrytkaOutbound:
    """The ``epuap-skrytka`` outbound kind: one office's sending channel to ePUAP."""

    wsdl = SKRYTKA_WSDL
    binding = SKRYTKA_BINDING
    operation = "nadaj"
    awaited_receipt: str | None = None

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        if endpoint.owner is None or not endpoint.owner.esp_address:
            raise ConfigurationError(f"endpoint {endpoint.name}: its office has no ESP address")
        self._endpoint = endpoint
        self._office: Office = endpoint.owner
        self._settings = settings
        self._service: Any = None
        self._filerepo: Any = None
        self._trust: TrustStore | None = None
        self._attachment_limit = int(
            endpoint.options.get("large_attachment_bytes", DEFAULT_LARGE_ATTACHMENT_BYTES)
        )

    def setup(self) -> None:
        """Load the office's identity and the platform's certificate once; build the client."""
        keystore = Keystore(self._settings.keys, self._settings.keystore_password)
        identity = keystore.identity(self._endpoint.office)
        platform_pem = self._platform_certificate()
        client = soap_client(
            self.wsdl,
            self._endpoint.url,
            self._endpoint.timeout_s,
            wsse=WsSecurity(identity, platform_certificate_pem=platform_pem),
        )
        self._service = client.create_service(self.binding, self._endpoint.url)
        # A UPP is the platform's word: only the pinned platform certificate signs one.
        self._trust = TrustStore.from_pems([platform_pem])
        filerepo_url = self._endpoint.options.get("filerepo_url")
        if filerepo_url:
            filerepo = soap_client(
                FILEREPO_WSDL, str(filerepo_url), self._endpoint.timeout_s, wsse=client.wsse
            )
            self._filerepo = filerepo.create_service(FILEREPO_BINDING, str(filerepo_url))

    def stop(self) -> None:
        """Nothing to release: the HTTP session closes with the process."""

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Send ``envelope`` with ``nadaj``; return the ePUAP document id and the verified UPP.

        Raises:
            TransientDeliveryError: ePUAP unreachable, timed out, or a server-side fault.
            PermanentDeliveryError: a refused request, a bad recipient address, or an answer
                not signed by the platform (the document may have arrived: check first).
        """
        recipient = _recipient(envelope)
        with _translate_soap_errors(self._endpoint.name):
            envelope = self._offload_large_attachments(envelope)
            answer = self._send(envelope, recipient)
        if answer.status.kod != STATUS_OK:
            raise PermanentDeliveryError(
                f"ePUAP refused the document for {recipient}: "
                f"{answer.status.kod} {answer.status.komunikat}"
            )
        evidence = self._upp_evidence(answer, envelope)
        return DeliveryReceipt(
            endpoint=self._endpoint.name,
            external_reference=str(answer.identyfikatorDokumentu),
            evidence=evidence,
            awaits=self.awaited_receipt,
        )

    @retry(
        retry=retry_if_exception_type(requests.ConnectionError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    )
    def _send(self, envelope: Envelope, recipient: str) -> Any:
        # Only connection failures are retried in-call: the request never reached ePUAP.
        return getattr(self._service, self.operation)(
            nazwaPliku=envelope.headers.get("filename", "dokument.xml"),
            typPliku=envelope.content_type,
            zawartosc=envelope.body,
            _soapheaders=self._soap_headers(envelope, recipient),
        )

    def _soap_headers(self, envelope: Envelope, recipient: str) -> dict[str, Any]:
        """The parameters the WSDL carries in SOAP headers."""
        return {
            "podmiot": self._office.epuap_podmiot,
            "adresSkrytki": recipient,
            "adresOdpowiedzi": self._office.esp_address,
            "czyProbne": False,
            "daneDodatkowe": b"",
        }

    def _offload_large_attachments(self, envelope: Envelope) -> Envelope:
        if self._filerepo is None:
            return envelope
        body = offload_large_attachments(
            envelope.body,
            limit_bytes=self._attachment_limit,
            filerepo_url=str(self._endpoint.options["filerepo_url"]),
            upload=self._upload,
        )
        return envelope if body is envelope.body else dataclasses.replace(envelope, body=body)

    def _upload(self, content: bytes, filename: str, mime_type: str) -> str:
        file_id = self._filerepo.uploadFile(
            file=content, filename=filename, mimeType=mime_type, subject=self._office.epuap_podmiot
        )
        return str(file_id)

    def _upp_evidence(self, answer: Any, envelope: Envelope) -> tuple[Evidence, ...]:
        attachment = getattr(answer, "zalacznik", None)
        if attachment is None or not attachment.zawartosc:
            log.warning("epuap_upp_missing", document_id=str(answer.identyfikatorDokumentu))
            return ()
        document: bytes = attachment.zawartosc
        assert self._trust is not None, "setup() was not called"
        try:
            verified = verify_document(document, self._trust)
        except (SignatureInvalid, MalformedDocument) as exc:
            # The letter is sent either way; a UPP that does not verify is kept as such.
            log.warning("epuap_upp_not_verified", reason=exc.reason)
            return (Evidence(UPP_KIND, document, answer.identyfikatorUpp, False, None, exc.reason),)
        detail = _digest_mismatch(verified.signed_document, envelope.body)
        return (
            Evidence(
                UPP_KIND,
                document,
                str(answer.identyfikatorUpp),
                signature_valid=detail is None,
                signer=verified.signer,
                detail=detail,
            ),
        )

    def _platform_certificate(self) -> bytes:
        configured = self._endpoint.options.get("platform_certificate")
        path = platform_certificate_path(self._settings.trust, "epuap", str(configured or ""))
        if not path.exists():
            raise ConfigurationError(
                f"endpoint {self._endpoint.name}: the platform certificate {path} is missing"
            )
        return path.read_bytes()


class EpuapDoreczycielOutbound(EpuapSkrytkaOutbound):
    """The ``epuap-doreczyciel`` outbound kind: delivery against a UPD (proof of delivery).

    The document must already carry the office's XAdES signature (a ``sign_with_office``
    route step puts it there); the platform refuses it otherwise.
    """

    wsdl = DORECZYCIEL_WSDL
    binding = DORECZYCIEL_BINDING
    operation = "dorecz"
    awaited_receipt = "UPD"

    def _upp_evidence(self, answer: Any, envelope: Envelope) -> tuple[Evidence, ...]:
        # dorecz answers without a UPP: its evidence, the UPD, comes later by itself.
        return ()

    def _soap_headers(self, envelope: Envelope, recipient: str) -> dict[str, Any]:
        # The case travels along, so the UPD names it (identyfikatorSprawy).
        return {
            **super()._soap_headers(envelope, recipient),
            "identyfikatorSprawy": envelope.correlation_id,
        }


def _recipient(envelope: Envelope) -> str:
    recipient = envelope.headers.get(RECIPIENT_HEADER, "")
    if not ESP_ADDRESS.match(recipient):
        raise PermanentDeliveryError(
            f"the envelope's {RECIPIENT_HEADER} header {recipient!r} is no ePUAP mailbox "
            "address of the form /podmiot/skrytka"
        )
    return recipient


def _digest_mismatch(upp: Any, body: bytes) -> str | None:
    """A reason if the UPP names a digest of another document than the one sent."""
    namespace = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"
    for info in upp.iter(f"{{{namespace}}}InformacjaUzupelniajaca"):
        if info.get("TypInformacjiUzupelniajacej") == "SkrotDokumentu":
            expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if (info.text or "").strip() != expected:
                return "the UPP certifies a document with another SHA-256 than the one sent"
    return None


@contextlib.contextmanager
def _translate_soap_errors(endpoint: str) -> Iterator[None]:
    try:
        yield
    except zeep.exceptions.Fault as exc:
        reason = f"{endpoint}: ePUAP answered a fault {exc.code}: {exc.message}"
        if exc.code and "Client" in str(exc.code):
            raise PermanentDeliveryError(reason) from exc
        raise TransientDeliveryError(reason) from exc
    except zeep.exceptions.TransportError as exc:
        reason = f"{endpoint}: ePUAP answered HTTP {exc.status_code}"
        if exc.status_code >= 500 or exc.status_code == 429:
            raise TransientDeliveryError(reason) from exc
        raise PermanentDeliveryError(reason) from exc
    except zeep.exceptions.SignatureVerificationFailed as exc:
        raise PermanentDeliveryError(_unsigned_answer(endpoint)) from exc
    except SignatureInvalid as exc:
        raise PermanentDeliveryError(f"{_unsigned_answer(endpoint)}: {exc.reason}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientDeliveryError(f"{endpoint}: ePUAP unreachable: {exc}") from exc
    except (zeep.exceptions.Error, SchemaViolation) as exc:
        raise PermanentDeliveryError(f"{endpoint}: {exc}") from exc


def _unsigned_answer(endpoint: str) -> str:
    return (
        f"{endpoint}: the platform's answer is not signed by its certificate; "
        "the document may have been delivered, so check before replaying"
    )
