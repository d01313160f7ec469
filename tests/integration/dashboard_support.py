"""The dashboard tests' accounts (a viewer, an operator, an admin, tokens) and traffic."""

from __future__ import annotations

import contextlib
import random
import re
from datetime import timedelta

from hub.envelope import Address, Envelope
from hub.errors import ClientRegistryError, PermanentDeliveryError, TransientDeliveryError
from hub.identity import ClientRegistry
from hub.receipts import Evidence
from hub.store.repository import AwaitedReceipt, PlannedDelivery, SignatureCheck, utcnow
from monitoring.auth import user_entry
from simulators.epuap.documents import generate_pismo_ogolne

PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"

PASSWORDS = {"vera": "viewer-pass", "otto": "operator-pass", "ada": "admin-pass"}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
# Hashing with scrypt takes a while; the entries are made once per test session.
USERS = ",".join(user_entry(name, ROLES[name], password) for name, password in PASSWORDS.items())
# The monitoring API's machines: clients of the registry acting for the region.
ROBOTS = {"grafana": ("viewer", VIEWER_TOKEN), "robot": ("operator", OPERATOR_TOKEN)}


def with_accounts(settings, store):
    """``settings`` with the test people, and the test robots registered in ``store``."""
    register_robots(store, ROBOTS)
    return settings.replace(dashboard_users=USERS, dashboard_secret_key="test-secret")


def register_robots(store, robots, acts_for="region"):
    """Register monitoring clients ``{name: (role, token)}`` once in ``store``."""
    registry = ClientRegistry(store)
    for name, (role, token) in robots.items():
        # An earlier app over the same store may have registered them.
        with contextlib.suppress(ClientRegistryError):
            registry.add(name, acts_for, apis=["monitoring"], role=role, token=token)


def bearer(token=VIEWER_TOKEN):
    return {"Authorization": f"Bearer {token}"}


def csrf_token(client):
    """The CSRF token of the client's session, taken from the login form as a browser would."""
    page = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def log_in(client, name):
    token = csrf_token(client)
    response = client.post(
        "/login", data={"name": name, "password": PASSWORDS[name], "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client)


class Traffic:
    """A few documents in every state the dashboard shows."""

    def __init__(self, store):
        self.store = store
        filing = generate_pismo_ogolne(random.Random(5), office_name="Urząd", office_teryt="1421")
        self.body = filing.content
        self.pesel = re.search(rb"<oso:PESEL>(\d{11})</oso:PESEL>", self.body).group(1).decode()
        self.surname = re.search(rb"<oso:Nazwisko>([^<]+)<", self.body).group(1).decode()
        self.delivered = self._delivered()
        self.dead, self.dead_delivery = self._dead()
        self.retrying = self._retrying()

    def _accept(self, office, external_id=None, headers=None):
        envelope = Envelope(
            document_type=PISMO_OGOLNE,
            source="epuap",
            destination=Address(office),
            body=self.body,
            headers=headers or {"epuap-reply-to": "/obywatel/skrytka", "filename": "pismo.xml"},
        )
        self.store.accept(envelope, external_id=external_id)
        return str(envelope.envelope_id)

    def _route(self, message_id, endpoint, check=None):
        [ticket] = self.store.record_routing(
            message_id, [PlannedDelivery(endpoint, "pismo-ogolne-to-eod")], [check] if check else ()
        )
        return ticket.delivery_id

    def _delivered(self):
        message_id = self._accept("146501_1", external_id="epuap:/umwarszawa/skrytka:2026:abc")
        delivery_id = self._route(
            message_id,
            "eod@146501_1",
            SignatureCheck(True, signer=f"Zofia {self.surname}", certificate_serial="1234"),
        )
        claim = self.store.claim_delivery(delivery_id, "worker-1", 60)
        self.store.complete_delivery(
            delivery_id,
            claim,
            "146501_1/KW/0000001/2026",
            [Evidence("UPP", b"<upp/>", external_id="UPP-1", signature_valid=True)],
            AwaitedReceipt("UPD", utcnow() + timedelta(days=14)),
        )
        return message_id

    def _dead(self):
        message_id = self._accept(
            "1421", headers={"edoreczenia-message-id": "EDOR-77", "edoreczenia-sender": "AE:PL-1"}
        )
        delivery_id = self._route(message_id, "eod@1421")
        claim = self.store.claim_delivery(delivery_id, "worker-1", 60)
        self.store.fail_delivery(
            delivery_id,
            claim,
            TransientDeliveryError("EOD answered 503"),
            give_up=False,
            next_attempt_at=None,
        )
        claim = self.store.claim_delivery(delivery_id, "worker-1", 60)
        self.store.fail_delivery(
            delivery_id,
            claim,
            PermanentDeliveryError(f"EOD refused: PESEL {self.pesel} does not match"),
            give_up=True,
            next_attempt_at=None,
        )
        return message_id, delivery_id

    def _retrying(self):
        message_id = self._accept("1421")
        delivery_id = self._route(message_id, "eod@1421")
        claim = self.store.claim_delivery(delivery_id, "worker-2", 60)
        self.store.fail_delivery(
            delivery_id,
            claim,
            TransientDeliveryError("timeout"),
            give_up=False,
            next_attempt_at=utcnow() + timedelta(seconds=10),
        )
        return message_id
