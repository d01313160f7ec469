"""Pulling filings from the offices' ePUAP mailboxes (WS-Pull).

For each mailbox: ``oczekujaceDokumenty`` (how many wait), then per document
``pobierzNastepny`` → store durably through ``accept`` → ``potwierdzOdebranie``. A
document is confirmed only after the store committed it, so a crash in between makes
ePUAP hand it over again, and the store recognises it by its external id. A document
that cannot be parsed is stored as rejected, with the reason, and confirmed all the
same: one bad filing must never block an office's inbox.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import requests
import zeep.exceptions
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from adapters.epuap.contract import PULL_BINDING, PULL_WSDL, STATUS_OK, sha1_b64, soap_client
from hub.adapters import Accept
from hub.envelope import Address, Envelope
from hub.errors import ConfigurationError, InboundUnavailable, MalformedDocument, SignatureInvalid
from hub.inbound import drain_in_parallel
from hub.logging import get_logger
from hub.region import InboundConfig, Office, Region
from hub.settings import Settings
from hub.signing.keystore import Keystore
from hub.signing.trust import platform_certificate_path
from hub.signing.wssecurity import WsSecurity
from hub.xml import parse_document, root_namespace

log = get_logger(__name__)

SOURCE = "epuap"
UNPARSEABLE_TYPE = "unparseable"


class _TransientSoapError(Exception):
    """A network-level failure worth a quick second try within the same poll."""


class EpuapPullInbound:
    """The ``epuap-pull`` inbound kind: drains every office mailbox of the region."""

    def __init__(self, channel: InboundConfig, region: Region, settings: Settings) -> None:
        self._url = channel.url
        self._timeout_s = float(channel.options.get("timeout_s", settings.delivery_timeout_s))
        # Mailboxes are drained in parallel: each SOAP call mostly waits on the network.
        self._concurrency = int(channel.options.get("concurrency", 4))
        self._offices = [office for office in region.offices.values() if office.esp_address]
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        # WS-Security: each office's system signs the calls for its own mailbox.
        self._signing = bool(channel.options.get("ws_security", False))
        self._settings = settings
        self._platform_certificate = str(channel.options.get("platform_certificate", ""))
        self._keystore: Keystore | None = None
        self._platform_pem: bytes | None = None

    def setup(self) -> None:
        """Start the pool of mailbox drainers (each thread builds its own zeep client)."""
        if self._signing:
            self._keystore = Keystore(self._settings.keys, self._settings.keystore_password)
            platform = platform_certificate_path(
                self._settings.trust, "epuap", self._platform_certificate
            )
            if not platform.exists():
                raise ConfigurationError(f"ePUAP platform certificate {platform} is missing")
            self._platform_pem = platform.read_bytes()
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="epuap-pull")

    def stop(self) -> None:
        """Stop the drainer threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def poll_once(self, accept: Accept) -> int:
        """Drain every mailbox once; a failing mailbox does not stop the others."""
        assert self._pool is not None, "setup() was not called"
        drains = {
            office.esp_address: functools.partial(self.drain_mailbox, office, accept)
            for office in self._offices
        }
        return drain_in_parallel(self._pool, drains)

    @property
    def _service(self) -> Any:
        return self._thread_client()[1]

    def _thread_client(self) -> tuple[Any, Any]:
        # zeep clients and requests sessions are not shared across threads: one per thread,
        # built from the real pull.wsdl and pointed at the configured URL.
        if getattr(self._local, "service", None) is None:
            self._local.client = soap_client(PULL_WSDL, self._url, self._timeout_s)
            self._local.service = self._local.client.create_service(PULL_BINDING, self._url)
            self._local.signers = {}
        return self._local.client, self._local.service

    def _sign_as(self, office: Office) -> None:
        """Make this thread's client sign with ``office``'s identity (a thread drains one box)."""
        if self._keystore is None:
            return
        client, _service = self._thread_client()
        signers: dict[str, WsSecurity] = self._local.signers
        if office.id not in signers:
            signers[office.id] = WsSecurity(
                self._keystore.identity(office.id), platform_certificate_pem=self._platform_pem
            )
        client.wsse = signers[office.id]

    def drain_mailbox(self, office: Office, accept: Accept) -> int:
        """Take every document waiting in ``office``'s mailbox; return how many."""
        query = _mailbox_query(office)
        self._sign_as(office)
        waiting = self._call("oczekujaceDokumenty", **query).oczekujace
        for _ in range(waiting):
            document = self._call("pobierzNastepny", **query)
            content: bytes = document.dokument.zawartosc
            skrot = sha1_b64(content)
            self._store(office, document, content, skrot, accept)
            self._confirm(query, skrot)
        return int(waiting)

    def _store(
        self, office: Office, document: Any, content: bytes, skrot: str, accept: Accept
    ) -> None:
        submitted_at = _aware(document.dataNadania)
        external_id = f"epuap:{document.adresSkrytki}:{submitted_at.isoformat()}:{skrot}"
        headers = {
            "epuap-mailbox": str(document.adresSkrytki),
            "epuap-reply-to": str(document.adresOdpowiedzi or ""),
            "epuap-submitted-at": submitted_at.isoformat(),
            "epuap-test": "true" if document.czyTestowe else "false",
            "filename": str(document.dokument.nazwaPliku),
        }
        try:
            document_type = root_namespace(parse_document(content))
            reason = None
        except MalformedDocument as exc:
            document_type, reason = UNPARSEABLE_TYPE, f"{exc.code}: {exc.reason}"
        envelope = Envelope(
            document_type=document_type,
            source=SOURCE,
            destination=Address(office.id),
            body=content,
            content_type=str(document.dokument.typPliku or "application/xml"),
            headers=headers,
        )
        accept(envelope, external_id=external_id, submitted_at=submitted_at, rejected_reason=reason)

    def _confirm(self, query: dict[str, str], skrot: str) -> None:
        answer = self._call("potwierdzOdebranie", **query, skrot=skrot)
        # zeep unwraps a one-field answer (OdpowiedzPullPotwierdz holds only its status).
        status = getattr(answer, "status", answer)
        if status.kod != STATUS_OK:
            # Already confirmed (e.g. our earlier confirmation was answered but lost).
            log.warning("epuap_confirm_refused", kod=status.kod, komunikat=status.komunikat)

    def _call(self, operation: str, **arguments: Any) -> Any:
        with _translate_soap_errors(operation):
            return self._call_with_retries(operation, **arguments)

    @retry(
        retry=retry_if_exception_type(_TransientSoapError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.1, max=1.0),
        reraise=True,
    )
    def _call_with_retries(self, operation: str, **arguments: Any) -> Any:
        try:
            return getattr(self._service, operation)(**arguments)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _TransientSoapError(str(exc)) from exc
        except zeep.exceptions.TransportError as exc:
            if exc.status_code >= 500:
                raise _TransientSoapError(f"HTTP {exc.status_code}") from exc
            raise


def _mailbox_query(office: Office) -> dict[str, str]:
    return {
        "podmiot": office.epuap_podmiot,
        "nazwaSkrytki": office.epuap_mailbox,
        "adresSkrytki": office.esp_address,
    }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextlib.contextmanager
def _translate_soap_errors(operation: str) -> Iterator[None]:
    try:
        yield
    except _TransientSoapError as exc:
        raise InboundUnavailable(f"ePUAP {operation} unreachable: {exc}") from exc
    except zeep.exceptions.Fault as exc:
        raise InboundUnavailable(f"ePUAP {operation} answered a fault: {exc.message}") from exc
    except SignatureInvalid as exc:
        raise InboundUnavailable(
            f"ePUAP {operation} answer not signed by ePUAP: {exc.reason}"
        ) from exc
    except zeep.exceptions.Error as exc:
        raise InboundUnavailable(f"ePUAP {operation} failed: {exc}") from exc
    except requests.RequestException as exc:
        raise InboundUnavailable(f"ePUAP {operation} failed: {exc}") from exc
