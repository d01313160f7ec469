"""Pulling filings from the offices' ePUAP mailboxes (WS-Pull).

For each mailbox: ``oczekujaceDokumenty`` (how many wait), then per document
``pobierzNastepny`` → store durably through ``accept`` → ``potwierdzOdebranie``. A
document is confirmed only after the store committed it, so a crash in between makes
ePUAP hand it over again, and the store recognises it by its external id. A document
that cannot be parsed is stored as rejected, with the reason, and confirmed all the
same: one bad filing must never block an office's inbox.

Mailboxes are drained in parallel, ``poll_concurrency`` at a time (a channel's
``concurrency`` option wins), each mailbox by one thread from start to end, so its
pull → store → confirm order is kept. zeep's documentation makes no promise about
threads and its author names the ``requests.Session`` inside the transport as the part
not to share (python-zeep issues #910 and #612), and a client's ``wsse`` plugin is an
attribute set before a call: so each thread builds its own client and session. What
the threads share is read-only: the keystore's identities and one WS-Security signer
per office, made once per process (a signer holds an xmlsec key, which python-xmlsec
duplicates into every signature context, under the GIL, before signing with it).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
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
from hub.signing.keystore import Keystore, SigningIdentity
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

    def __init__(
        self,
        channel: InboundConfig,
        region: Region,
        settings: Settings,
        *,
        keystore: Keystore | None = None,
    ) -> None:
        """Take the region's offices with an ePUAP mailbox; nothing is opened yet.

        Args:
            channel: the ``[[inbound]]`` table (``url``, ``ws_security``, ``concurrency``,
                ``timeout_s``, ``platform_certificate``).
            region: whose offices' mailboxes are drained (see :meth:`follow_region`).
            settings: the hub's settings (keystore, trust store, ``poll_concurrency``).
            keystore: the offices' identities, if the hosting process shares its own;
                by default :meth:`setup` opens ``settings.keys``.
        """
        self._url = channel.url
        self._timeout_s = float(channel.options.get("timeout_s", settings.delivery_timeout_s))
        self._concurrency = int(channel.options.get("concurrency", settings.poll_concurrency))
        self._offices = _offices_with_mailbox(region)
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        # WS-Security: each office's system signs the calls for its own mailbox.
        self._signing = bool(channel.options.get("ws_security", False))
        self._settings = settings
        self._platform_certificate = str(channel.options.get("platform_certificate", ""))
        self._keystore = keystore
        self._platform_pem: bytes | None = None
        self._signers: dict[str, tuple[SigningIdentity, WsSecurity]] = {}
        self._signers_lock = threading.Lock()

    def setup(self) -> None:
        """Open the keystore and start the pool of mailbox drainers (clients come per thread)."""
        if self._signing:
            if self._keystore is None:
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

    def follow_region(self, region: Region) -> None:
        """Drain the mailboxes of ``region``'s offices from the next poll on.

        An added office's key is loaded when its mailbox is first drained; the signers
        of offices that left the region are dropped.
        """
        self._offices = _offices_with_mailbox(region)
        current = {office.id for office in self._offices}
        with self._signers_lock:
            for office_id in set(self._signers) - current:
                del self._signers[office_id]

    def poll_once(self, accept: Accept) -> int:
        """Drain every mailbox once; a failing mailbox does not stop the others.

        Raises:
            MailboxesFailed: some mailboxes could not be drained (each is logged); it
                carries how many documents the others took.
        """
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
        # One zeep client (and requests session) per drainer thread, built from the real
        # pull.wsdl and pointed at the configured URL; see the module docstring for why.
        if getattr(self._local, "service", None) is None:
            self._local.client = soap_client(PULL_WSDL, self._url, self._timeout_s)
            self._local.service = self._local.client.create_service(PULL_BINDING, self._url)
        return self._local.client, self._local.service

    def _sign_as(self, office: Office) -> None:
        """Make this thread's client sign with ``office``'s identity (a thread drains one box)."""
        if self._keystore is None:
            return
        client, _service = self._thread_client()
        client.wsse = self._signer(office.id, self._keystore)

    def _signer(self, office_id: str, keystore: Keystore) -> WsSecurity:
        """The office's WS-Security signer, made again only when the keystore reloaded it."""
        identity = keystore.identity(office_id)
        with self._signers_lock:
            made = self._signers.get(office_id)
            if made is None or made[0] is not identity:
                made = (identity, WsSecurity(identity, platform_certificate_pem=self._platform_pem))
                self._signers[office_id] = made
            return made[1]

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


def _offices_with_mailbox(region: Region) -> Sequence[Office]:
    return tuple(office for office in region.offices.values() if office.esp_address)


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
