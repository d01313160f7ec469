"""The sending side of the simulated ePUAP: ``skrytka.nadaj`` and ``doreczyciel.dorecz``.

* ``nadaj`` puts the document into the addressee's skrytka (where its owner pulls it
  with the pull service) and answers with a signed UPP.
* ``dorecz`` takes only a document with a valid XAdES signature, puts it into the
  addressee's skrytka and, once the simulated addressee "picks it up" (after a delay, or
  when an admin releases held receipts), drops a signed UPD into the sender's reply
  skrytka (``adresOdpowiedzi``), where the sender's pull poller finds it.

This module knows ePUAP's rules, not SOAP: it reads the values zeep parsed from a
request and returns the values zeep serializes into the answer. A refusal is a
:class:`SendRefused`, which the SOAP layer (``server.py``) turns into a Fault.
"""

from __future__ import annotations

import heapq
import itertools
import mimetypes
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography import x509

from hub.errors import RejectedInput
from hub.signing.trust import TrustStore
from hub.signing.xades import VerifiedSignature, verify_document
from simulators.epuap.documents import sha1_b64
from simulators.epuap.mailboxes import (
    PendingDocument,
    SentDocument,
    SimulatorState,
    parse_mailbox_address,
)
from simulators.epuap.receipts import (
    Podmiot,
    ReceiptSigner,
    Upd,
    Upp,
    render_upd,
    render_upp,
    sha256_b64,
)

__all__ = [
    "DEFAULT_UPD_DELAY_S",
    "OP_DORECZ",
    "OP_NADAJ",
    "RefusalKind",
    "SendRefused",
    "SendServices",
    "UpdCourier",
    "UpdOrder",
    "document_trust",
]

OP_NADAJ = "nadaj"
OP_DORECZ = "dorecz"
DEFAULT_UPD_DELAY_S = 0.5
UPP_FILENAME = "UPP.xml"
UPD_FILENAME = "UPD.xml"
RECEIPT_CONTENT_TYPE = "text/xml"
#: The simulated platform as a party of the receipts it issues.
PLATFORM = Podmiot(nazwa="ePUAP (symulator)", identyfikator="epuap")
UNKNOWN_SENDER = "nieznany-nadawca"

# UPD states in the sent log; "delivered" and "failed" are final.
UPD_SCHEDULED = "scheduled"
UPD_HELD = "held"
UPD_DELIVERED = "delivered"
UPD_FAILED = "failed"
UPD_NONE = "none"


class RefusalKind(StrEnum):
    """Why the platform refuses a sent document; the SOAP layer maps each to a Wyjatek kod."""

    BAD_ADDRESS = "bad_address"
    SIGNATURE_INVALID = "signature_invalid"


class SendRefused(Exception):
    """ePUAP will not take this document as sent; the caller gets a Client Fault."""

    def __init__(self, kind: RefusalKind, reason: str) -> None:
        """Remember why.

        Args:
            kind: the class of refusal (decides the Wyjatek kod).
            reason: the komunikat, in Polish like the platform's own.
        """
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Submission:
    """What one nadaj or dorecz request carries: its SOAP headers, its Dokument, its signer."""

    podmiot: str
    adres_skrytki: str
    adres_odpowiedzi: str
    czy_probne: bool
    dane_dodatkowe: bytes
    identyfikator_sprawy: str
    nazwa_pliku: str
    typ_pliku: str
    zawartosc: bytes
    signer: str | None

    @classmethod
    def from_request(cls, value: Any, signer: str | None) -> Submission:
        """Read zeep's parse: SOAP-header parts under ``header``, the Dokument under ``body``."""
        header, body = value.header, value.body
        return cls(
            podmiot=header.podmiot or "",
            adres_skrytki=header.adresSkrytki or "",
            adres_odpowiedzi=header.adresOdpowiedzi or "",
            czy_probne=bool(header.czyProbne),
            dane_dodatkowe=header.daneDodatkowe or b"",
            # Only dorecz has this header; zeep's object raises AttributeError otherwise.
            identyfikator_sprawy=getattr(header, "identyfikatorSprawy", None) or "",
            nazwa_pliku=body.nazwaPliku,
            typ_pliku=body.typPliku or mimetypes.guess_type(body.nazwaPliku)[0] or "",
            zawartosc=body.zawartosc,
            signer=signer,
        )

    @property
    def sender(self) -> str:
        """The sender's id: the podmiot header, else the WS-Security signer."""
        return self.podmiot or _common_name(self.signer) or UNKNOWN_SENDER


@dataclass(frozen=True)
class UpdOrder:
    """A dorecz document waiting to be picked up, and where its UPD must go."""

    document_id: str
    address: str
    reply_address: str
    identyfikator_sprawy: str
    sha256_b64: str


class UpdCourier:
    """Plays the addressees of dorecz documents: each picks up after a delay, or is held.

    ``deliver`` is called once per order, from the request thread when the delay is 0,
    else from one worker thread that lives only while something is scheduled; it must
    not raise.
    """

    def __init__(
        self,
        deliver: Callable[[UpdOrder], None],
        delay_s: float = DEFAULT_UPD_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start with nothing scheduled and nothing held."""
        self._deliver = deliver
        self._default_delay_s = delay_s
        self._delay_s = delay_s
        self._hold = False
        self._clock = clock
        self._condition = threading.Condition()
        self._held: list[UpdOrder] = []
        # Heap of (due time, sequence, order); the sequence keeps equal times in order.
        self._scheduled: list[tuple[float, int, UpdOrder]] = []
        self._sequence = itertools.count()
        self._worker: threading.Thread | None = None

    def schedule(self, order: UpdOrder) -> str:
        """Accept one order; return its UPD state: held, scheduled or (delay 0) delivered."""
        with self._condition:
            if self._hold:
                self._held.append(order)
                return UPD_HELD
            if self._delay_s > 0:
                due_at = self._clock() + self._delay_s
                heapq.heappush(self._scheduled, (due_at, next(self._sequence), order))
                self._ensure_worker()
                self._condition.notify_all()
                return UPD_SCHEDULED
        self._deliver(order)
        return UPD_DELIVERED

    def configure(self, *, hold: bool | None = None, delay_s: float | None = None) -> int:
        """Change holding and the pick-up delay; lifting the hold delivers the held at once.

        Returns:
            How many held UPDs were delivered.
        """
        with self._condition:
            if delay_s is not None:
                self._delay_s = delay_s
            if hold is not None:
                self._hold = hold
            released = [] if self._hold else self._take_held()
        self._deliver_all(released)
        return len(released)

    def release(self) -> int:
        """Deliver every held and every still-scheduled UPD now; return how many."""
        with self._condition:
            released = self._take_held() + [order for _, _, order in sorted(self._scheduled)]
            self._scheduled.clear()
            self._condition.notify_all()
        self._deliver_all(released)
        return len(released)

    def snapshot(self) -> dict[str, Any]:
        """Return the settings and how many UPDs wait, JSON-ready."""
        with self._condition:
            return {
                "hold": self._hold,
                "delay_s": self._delay_s,
                "held": len(self._held),
                "scheduled": len(self._scheduled),
            }

    def reset(self) -> None:
        """Drop every waiting UPD and restore the default delay, without holding."""
        with self._condition:
            self._held.clear()
            self._scheduled.clear()
            self._hold = False
            self._delay_s = self._default_delay_s
            self._condition.notify_all()

    def _take_held(self) -> list[UpdOrder]:
        """Empty the held list (caller holds the lock) and return what it held."""
        held, self._held = self._held, []
        return held

    def _deliver_all(self, orders: Sequence[UpdOrder]) -> None:
        """Deliver outside the lock: signing a UPD takes a millisecond or two."""
        for order in orders:
            self._deliver(order)

    def _ensure_worker(self) -> None:
        """Start the worker thread unless it runs (caller holds the lock)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="upd-courier", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        """Deliver scheduled orders as they fall due; stop when none is left."""
        while True:
            order = self._next_due()
            if order is None:
                return
            self._deliver(order)

    def _next_due(self) -> UpdOrder | None:
        """Wait for the earliest order to fall due and pop it; None once the heap is empty."""
        with self._condition:
            while self._scheduled:
                due_at = self._scheduled[0][0]
                wait_s = due_at - self._clock()
                if wait_s <= 0:
                    return heapq.heappop(self._scheduled)[2]
                self._condition.wait(wait_s)
            # Cleared under the lock, so a schedule() after this starts a new worker.
            self._worker = None
            return None


class _AnyIssuer(TrustStore):
    """Takes a certificate from any issuer: only for a simulator started without a trust store.

    The signature must still be well made and cover the whole document; only the chain
    to a trusted CA goes unchecked, which is never what ePUAP does.
    """

    def __init__(self) -> None:
        """No authorities: none is consulted."""
        super().__init__([])

    def check(self, certificate: x509.Certificate, at: datetime) -> None:
        """Accept every certificate."""


def document_trust(trusted_ca_pems: Sequence[bytes] | None) -> TrustStore:
    """Return the trust store dorecz checks documents against (any issuer when None)."""
    if trusted_ca_pems is None:
        return _AnyIssuer()
    return TrustStore.from_pems(list(trusted_ca_pems))


class SendServices:
    """nadaj and dorecz, sharing the mailboxes and the sent log of a ``SimulatorState``."""

    def __init__(
        self,
        state: SimulatorState,
        receipts: ReceiptSigner,
        trust: TrustStore,
        upd_delay_s: float = DEFAULT_UPD_DELAY_S,
    ) -> None:
        """Wire the services to the state, the platform's signer and the trust store.

        Args:
            state: mailboxes (where documents and UPDs go) and the sent log.
            receipts: signs UPPs and UPDs with the platform's identity.
            trust: the CAs whose signers dorecz accepts.
            upd_delay_s: how long the simulated addressee takes to pick up.
        """
        self._state = state
        self._receipts = receipts
        self._trust = trust
        self.courier = UpdCourier(self._deliver_upd, upd_delay_s)

    def nadaj(self, value: Any, signer: str | None) -> dict[str, Any]:
        """skrytka.nadaj: enqueue for the addressee (unless czyProbne), answer with a UPP."""
        submission = Submission.from_request(value, signer)
        _require_address(submission.adres_skrytki, "adresSkrytki")
        if submission.adres_odpowiedzi:
            _require_address(submission.adres_odpowiedzi, "adresOdpowiedzi")
        received_at = datetime.now(UTC)
        document_id, upp_id = self._state.sent.next_id(), self._state.sent.next_id()
        upp = self._receipts.sign(render_upp(_upp(submission, document_id, upp_id, received_at)))
        if not submission.czy_probne:
            self._state.mailboxes.enqueue([_pending(submission, received_at)])
        self._record(
            OP_NADAJ,
            submission,
            document_id=document_id,
            receipt_id=upp_id,
            verified=None,
            received_at=received_at,
        )
        return {
            "status": _status_ok(),
            "identyfikatorDokumentu": document_id,
            "identyfikatorUpp": upp_id,
            "zalacznik": {
                "nazwaPliku": UPP_FILENAME,
                "typPliku": RECEIPT_CONTENT_TYPE,
                "zawartosc": upp,
            },
        }

    def dorecz(self, value: Any, signer: str | None) -> dict[str, Any]:
        """doreczyciel.dorecz: take a validly signed document, enqueue it, promise a UPD."""
        submission = Submission.from_request(value, signer)
        _require_address(submission.adres_skrytki, "adresSkrytki")
        _require_address(submission.adres_odpowiedzi, "adresOdpowiedzi")
        verified = self._verify(submission.zawartosc)
        received_at = datetime.now(UTC)
        document_id, order_id = self._state.sent.next_id(), self._state.sent.next_id()
        self._record(
            OP_DORECZ,
            submission,
            document_id=document_id,
            receipt_id=order_id,
            verified=verified,
            received_at=received_at,
        )
        if not submission.czy_probne:
            self._state.mailboxes.enqueue([_pending(submission, received_at)])
            state = self.courier.schedule(_upd_order(submission, document_id))
            self._state.sent.mark_upd(document_id, state)
        return {
            "status": _status_ok(),
            "identyfikatorDokumentu": document_id,
            "identyfikatorZlecenia": order_id,
        }

    def reset(self) -> None:
        """Drop waiting UPDs and restore the courier's defaults."""
        self.courier.reset()

    def _verify(self, document: bytes) -> VerifiedSignature:
        """Require a valid enveloped XAdES signature from a trusted signer."""
        try:
            return verify_document(document, self._trust)
        except RejectedInput as exc:
            raise SendRefused(
                RefusalKind.SIGNATURE_INVALID,
                f"Dokument nie ma ważnego podpisu XAdES: {exc.reason}",
            ) from exc

    def _record(
        self,
        operation: str,
        submission: Submission,
        *,
        document_id: str,
        receipt_id: str,
        verified: VerifiedSignature | None,
        received_at: datetime,
    ) -> None:
        """Add one entry to the sent log (GET /_sim/sent)."""
        trial_dorecz = operation == OP_DORECZ and submission.czy_probne
        self._state.sent.record(
            SentDocument(
                operation=operation,
                document_id=document_id,
                receipt_id=receipt_id,
                address=submission.adres_skrytki,
                reply_address=submission.adres_odpowiedzi,
                podmiot=submission.sender,
                filename=submission.nazwa_pliku,
                sha256_b64=sha256_b64(submission.zawartosc),
                signer=submission.signer,
                document_signer=verified.signer if verified is not None else None,
                trial=submission.czy_probne,
                received_at=received_at,
                upd=UPD_NONE if trial_dorecz else None,
            )
        )

    def _deliver_upd(self, order: UpdOrder) -> None:
        """The addressee picked up: put a signed UPD into the sender's reply skrytka."""
        picked_up_at = datetime.now(UTC)
        try:
            upd_id = self._state.sent.next_id()
            upd = self._receipts.sign(render_upd(_upd(order, upd_id, picked_up_at)))
            self._state.mailboxes.enqueue([_upd_pending(order, upd, picked_up_at)])
        except Exception:  # noqa: BLE001 - runs on the courier thread, which must survive
            self._state.sent.mark_upd(order.document_id, UPD_FAILED)
            return
        self._state.sent.mark_upd(order.document_id, UPD_DELIVERED, picked_up_at)


def _require_address(address: str, header: str) -> None:
    """Refuse a skrytka address that is not ``/podmiot/skrytka``."""
    try:
        parse_mailbox_address(address)
    except ValueError as exc:
        raise SendRefused(
            RefusalKind.BAD_ADDRESS,
            f"Nieprawidłowy nagłówek {header}: {address!r} nie ma postaci /podmiot/skrytka",
        ) from exc


def _status_ok() -> dict[str, Any]:
    """Return the StatusTyp of success (kod 1 is ePUAP's OK)."""
    return {"kod": 1, "komunikat": "OK"}


def _common_name(subject: str | None) -> str:
    """Return the CN of an RFC 4514 subject ("CN=146501_1,O=...,C=PL" gives "146501_1")."""
    if not subject:
        return ""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        return ""
    values = [attribute.value for attribute in name if attribute.oid == x509.NameOID.COMMON_NAME]
    return str(values[0]) if values else ""


def _addressee(address: str) -> Podmiot:
    """Return the owner of a skrytka as a receipt party (its podmiot id doubles as name)."""
    podmiot, _ = parse_mailbox_address(address)
    return Podmiot(nazwa=podmiot, identyfikator=podmiot)


def _upp(submission: Submission, document_id: str, upp_id: str, received_at: datetime) -> Upp:
    """Return the facts of the UPP for a nadaj submission."""
    return Upp(
        identyfikator_poswiadczenia=upp_id,
        adresat=_addressee(submission.adres_skrytki),
        nadawca=Podmiot(nazwa=submission.sender, identyfikator=submission.sender),
        data_doreczenia=received_at,
        data_wytworzenia=datetime.now(UTC),
        identyfikator_dokumentu=document_id,
        skrot_dokumentu=sha256_b64(submission.zawartosc),
    )


def _upd_order(submission: Submission, document_id: str) -> UpdOrder:
    """Return what the courier needs to issue the UPD of a dorecz submission."""
    return UpdOrder(
        document_id=document_id,
        address=submission.adres_skrytki,
        reply_address=submission.adres_odpowiedzi,
        identyfikator_sprawy=submission.identyfikator_sprawy,
        sha256_b64=sha256_b64(submission.zawartosc),
    )


def _upd(order: UpdOrder, upd_id: str, picked_up_at: datetime) -> Upd:
    """Return the facts of the UPD for a picked-up dorecz document."""
    return Upd(
        identyfikator_poswiadczenia=upd_id,
        wystawca=PLATFORM,
        adresat=_addressee(order.address),
        data_odbioru=picked_up_at,
        data_utworzenia=datetime.now(UTC),
        identyfikator_sprawy=order.identyfikator_sprawy,
        identyfikator_dokumentu=order.document_id,
        skrot_dokumentu=order.sha256_b64,
    )


def _pending(submission: Submission, received_at: datetime) -> PendingDocument:
    """Wrap a sent document for the addressee's pull queue, sent by an office ("P")."""
    return PendingDocument(
        address=submission.adres_skrytki,
        content=submission.zawartosc,
        sha1_b64=sha1_b64(submission.zawartosc),
        enqueued_at=received_at,
        filename=submission.nazwa_pliku,
        content_type=submission.typ_pliku or RECEIPT_CONTENT_TYPE,
        title=submission.nazwa_pliku,
        sender_login=submission.sender,
        sender_first_name="",
        sender_last_name=submission.sender,
        sender_pesel="",
        extra_data=submission.dane_dodatkowe,
        sender_type="P",
        reply_address=submission.adres_odpowiedzi,
    )


def _upd_pending(order: UpdOrder, upd: bytes, picked_up_at: datetime) -> PendingDocument:
    """Wrap a signed UPD for the sender's reply skrytka, as sent by the addressee."""
    addressee, _ = parse_mailbox_address(order.address)
    return PendingDocument(
        address=order.reply_address,
        content=upd,
        sha1_b64=sha1_b64(upd),
        enqueued_at=picked_up_at,
        filename=UPD_FILENAME,
        content_type=RECEIPT_CONTENT_TYPE,
        title="UPD",
        sender_login=addressee,
        sender_first_name="",
        sender_last_name=addressee,
        sender_pesel="",
        sender_type="P",
        reply_address=order.address,
    )
