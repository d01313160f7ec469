"""The e-Doręczenia client and outbound adapter against the simulator, over real loopback HTTP.

The simulator checks every request against the UA API contract with openapi-core and,
here, every answer too; each test ends by asserting that nothing broke the contract.
It signs its evidences with the ``edoreczenia`` identity ``hub keys init`` makes, and
the hub pins that identity's certificate. No RabbitMQ or database is needed.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.edoreczenia.client import EDoreczeniaClient
from adapters.edoreczenia.outbound import EDoreczeniaOutbound
from hub.envelope import Address, Envelope
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.region import EndpointConfig
from hub.settings import Settings
from hub.signing.keystore import Keystore, SigningIdentity, init_test_pki
from hub.signing.trust import PLATFORMS
from simulators.edoreczenia.mailboxes import SimulatorState
from simulators.edoreczenia.server import create_app
from simulators.edoreczenia.signing import EvidenceSigner
from simulators.processes import start_simulator
from simulators.serving import loopback_server

CLIENT_ID, CLIENT_SECRET = "hub-mazowsze", "sekret"
OFFICE = "AE:PL-14650-10000-AAAAA-01"
CITIZEN = "AE:PL-51234-56789-BCDEF-11"
COMPANY = "AE:PL-77777-12345-XYZ00-42"
DECYZJA = b'<?xml version="1.0"?><Decyzja xmlns="urn:test:decyzja"><Tresc>Tak</Tresc></Decyzja>'


@dataclass(frozen=True)
class Provider:
    """The e-Doręczenia provider's identity and where the hub pins its certificate."""

    identity: SigningIdentity
    pinned_certificate: Path
    #: An office's certificate from the provider's own CA, which pins nobody else.
    office_certificate: Path


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    # As hub keys init lays it out: the key in platforms/, the certificate in the trust list.
    folder = tmp_path_factory.mktemp("pki")
    init_test_pki(
        folder / "keys",
        folder / "trust",
        ["edoreczenia", "146501_1"],
        platforms_dir=folder / "platforms",
    )
    identity = Keystore(folder / "platforms").identity("edoreczenia")
    return Provider(
        identity, folder / "trust" / PLATFORMS / "edoreczenia.pem", folder / "keys" / "146501_1.pem"
    )


@dataclass
class RunningSimulator:
    """The simulator served on a loopback port, with its state at hand."""

    url: str
    state: SimulatorState
    pinned_certificate: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/_sim/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def arm(self, kind: str, **spec: Any) -> None:
        self.admin("POST", "faults", json={"kind": kind, **spec})


@pytest.fixture
def simulator(provider: Provider) -> Iterator[RunningSimulator]:
    state = SimulatorState(
        clients={CLIENT_ID: CLIENT_SECRET}, evidence_signer=EvidenceSigner(provider.identity)
    )
    server = loopback_server(create_app(state, validate_responses=True, notify_timeout_s=1.0))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield RunningSimulator(f"http://127.0.0.1:{server.port}", state, provider.pinned_certificate)
    server.shutdown()
    thread.join(5)
    assert state.request_violations == [], "the hub sent requests the contract forbids"
    assert state.response_violations == [], "the simulator answered outside the contract"


@pytest.fixture
def client(simulator: RunningSimulator) -> Iterator[EDoreczeniaClient]:
    client = EDoreczeniaClient(
        simulator.api_url,
        simulator.token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        timeout_s=2.0,
    )
    yield client
    client.close()


def outbound_for(simulator: RunningSimulator, **options: Any) -> EDoreczeniaOutbound:
    endpoint = EndpointConfig(
        name="edoreczenia@146501_1",
        kind="edoreczenia-rest",
        office="146501_1",
        system="edoreczenia",
        url=simulator.api_url,
        timeout_s=2.0,
        options={
            "token_url": simulator.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "sender_address": OFFICE,
            "platform_certificate": str(simulator.pinned_certificate),
            **options,
        },
    )
    adapter = EDoreczeniaOutbound(endpoint, Settings())
    adapter.setup()
    return adapter


@pytest.fixture
def outbound(simulator: RunningSimulator) -> Iterator[EDoreczeniaOutbound]:
    adapter = outbound_for(simulator)
    yield adapter
    adapter.stop()


def decision(recipients: str, **headers: str) -> Envelope:
    return Envelope(
        document_type="urn:test:decyzja",
        source="eod",
        destination=Address("146501_1", "edoreczenia"),
        body=DECYZJA,
        headers={"edoreczenia-recipients": recipients, **headers},
    )


def send(client: EDoreczeniaClient, recipients: list[str]) -> str:
    sent = client.send_message(
        OFFICE,
        recipients,
        subject="Decyzja",
        body_bytes=DECYZJA,
        filename="decyzja.xml",
        content_type="application/xml",
    )
    assert len(sent.message_ids) == 1
    return sent.message_ids[0]


def test_a_delivered_envelope_obeys_the_contract_and_arrives_in_each_addressees_mailbox(
    simulator: RunningSimulator, outbound: EDoreczeniaOutbound
) -> None:
    envelope = decision(f"{CITIZEN}, {COMPANY}", subject="Decyzja w sprawie 7/2025")

    receipt = outbound.deliver(envelope)

    sent = simulator.admin("GET", f"mailboxes/{OFFICE}")
    assert [message["messageId"] for message in sent] == [receipt.external_reference]
    assert receipt.endpoint == "edoreczenia@146501_1"
    for addressee in (CITIZEN, COMPANY):
        (arrived,) = simulator.admin("GET", f"mailboxes/{addressee}")
        assert arrived["labels"] == ["INBOX"]
        assert arrived["from"] == OFFICE
        assert arrived["subject"] == "Decyzja w sprawie 7/2025"
        (attachment,) = arrived["attachments"]
        assert attachment["contentType"] == "application/xml"
        assert base64.b64decode(attachment["content"]) == DECYZJA
    assert sent[0]["additionalData"]["hubEnvelopeId"] == str(envelope.envelope_id)
    assert simulator.admin("GET", "stats").get("contract_violations", 0) == 0


def test_the_proof_of_submission_comes_back_as_the_deliverys_evidence(
    outbound: EDoreczeniaOutbound,
) -> None:
    receipt = outbound.deliver(decision(CITIZEN))

    kinds = [evidence.kind for evidence in receipt.evidence]
    assert kinds, "the service issues a proof of submission at once"
    assert all(kind.startswith("e-Doręczenia ") for kind in kinds)
    assert all(evidence.document for evidence in receipt.evidence)


def test_the_evidences_read_after_sending_are_the_providers_signed_and_verified(
    outbound: EDoreczeniaOutbound,
) -> None:
    receipt = outbound.deliver(decision(CITIZEN))

    assert [evidence.kind for evidence in receipt.evidence] == [
        "e-Doręczenia A.1",
        "e-Doręczenia D.1",
    ]
    assert all(evidence.signature_valid is True for evidence in receipt.evidence)
    assert all(str(evidence.signer).startswith("CN=edoreczenia,") for evidence in receipt.evidence)
    # The letter is handed over only when the addressee opens it: E.1 comes later.
    assert receipt.awaits == "e-Doręczenia E.1"


def test_an_evidence_tampered_after_the_provider_signed_it_is_recorded_as_not_verified(
    simulator: RunningSimulator, outbound: EDoreczeniaOutbound
) -> None:
    simulator.arm("forged_evidence", evidence_type="D.1")

    receipt = outbound.deliver(decision(CITIZEN))

    verdicts = {evidence.kind: evidence for evidence in receipt.evidence}
    assert verdicts["e-Doręczenia A.1"].signature_valid is True
    forged = verdicts["e-Doręczenia D.1"]
    assert forged.signature_valid is False
    assert forged.signer is None
    assert "not the provider's evidence: the signature does not verify" in str(forged.detail)
    assert simulator.admin("GET", "stats")["fault_forged_evidence"] == 1


def test_evidences_signed_by_anyone_but_the_pinned_provider_are_not_verified(
    simulator: RunningSimulator, provider: Provider
) -> None:
    # Pinned: another certificate of the provider's own CA. Sharing a CA is not enough.
    adapter = outbound_for(simulator, platform_certificate=str(provider.office_certificate))
    try:
        receipt = adapter.deliver(decision(CITIZEN))
    finally:
        adapter.stop()

    assert receipt.evidence
    assert all(evidence.signature_valid is False for evidence in receipt.evidence)
    assert all("not issued by a trusted CA" in str(item.detail) for item in receipt.evidence)


def test_the_attachment_arrives_byte_for_byte(
    simulator: RunningSimulator, client: EDoreczeniaClient
) -> None:
    send(client, [CITIZEN])

    (summary,) = client.list_messages(CITIZEN)
    message = client.get_message(CITIZEN, summary.message_id)
    content = client.download_attachment(
        CITIZEN, message.message_id, message.attachments[0].attachment_id
    )

    assert content == DECYZJA
    assert message.sender == OFFICE
    assert message.attachments[0].filename == "decyzja.xml"


def test_evidences_come_back_in_order_with_their_documents(
    simulator: RunningSimulator, client: EDoreczeniaClient
) -> None:
    message_id = send(client, [CITIZEN])
    (summary,) = client.list_messages(CITIZEN)
    client.get_message(CITIZEN, summary.message_id)  # the addressee opens it: E.1

    evidences = client.evidences(OFFICE, message_id)

    assert [evidence.kind for evidence in evidences] == ["A.1", "D.1", "E.1"]
    moments = [evidence.issued_at for evidence in evidences]
    assert moments == sorted(moments)
    assert len(set(moments)) == 3
    for evidence in evidences:
        document = etree.fromstring(evidence.document)
        assert document.get("typ") == evidence.kind
        assert document.findtext("{*}identyfikatorWiadomosci") == message_id
        assert evidence.recipient == CITIZEN


def test_evidences_before_the_addressee_opens_the_message_stop_at_consignment(
    client: EDoreczeniaClient,
) -> None:
    message_id = send(client, [CITIZEN, COMPANY])

    kinds = [
        (evidence.kind, evidence.recipient) for evidence in client.evidences(OFFICE, message_id)
    ]

    assert kinds == [("A.1", CITIZEN), ("D.1", CITIZEN), ("A.1", COMPANY), ("D.1", COMPANY)]


def test_throttling_is_transient_and_carries_the_retry_after_value(
    simulator: RunningSimulator, outbound: EDoreczeniaOutbound
) -> None:
    simulator.arm("http429", method="POST", retry_after_s=7)

    with pytest.raises(TransientDeliveryError) as caught:
        outbound.deliver(decision(CITIZEN))

    assert caught.value.retry_after_s == 7
    assert simulator.admin("GET", f"mailboxes/{CITIZEN}") == []


def test_an_expired_token_is_renewed_once_and_the_call_succeeds(
    simulator: RunningSimulator, client: EDoreczeniaClient
) -> None:
    assert client.list_messages(CITIZEN) == []
    simulator.admin("POST", "tokens/expire")

    assert client.list_messages(CITIZEN) == []

    stats = simulator.admin("GET", "stats")
    assert stats["tokens_issued"] == 2
    assert stats["unauthorized"] == 1


def test_a_revoked_token_is_renewed_during_a_delivery(
    simulator: RunningSimulator, outbound: EDoreczeniaOutbound
) -> None:
    outbound.deliver(decision(CITIZEN))
    simulator.arm("http401", method="POST")

    outbound.deliver(decision(CITIZEN))

    assert len(simulator.admin("GET", f"mailboxes/{CITIZEN}")) == 2
    assert simulator.admin("GET", "stats")["tokens_issued"] == 2


def test_a_token_refused_twice_is_permanent(
    simulator: RunningSimulator, client: EDoreczeniaClient
) -> None:
    simulator.arm("http401", times=2, path_contains="/api/v1/")

    with pytest.raises(PermanentDeliveryError, match="401"):
        client.list_messages(CITIZEN)

    assert simulator.admin("GET", "stats")["tokens_issued"] == 2


def test_wrong_client_credentials_are_permanent(simulator: RunningSimulator) -> None:
    client = EDoreczeniaClient(
        simulator.api_url,
        simulator.token_url,
        client_id=CLIENT_ID,
        client_secret="wrong",
        timeout_s=2.0,
    )

    with pytest.raises(PermanentDeliveryError, match="invalid_client"):
        client.list_messages(CITIZEN)


def test_a_server_error_is_transient(
    simulator: RunningSimulator, outbound: EDoreczeniaOutbound
) -> None:
    simulator.arm("http500", method="POST")

    with pytest.raises(TransientDeliveryError, match="500") as caught:
        outbound.deliver(decision(CITIZEN))

    assert caught.value.retry_after_s is None


def test_a_refusal_is_permanent(simulator: RunningSimulator, outbound: EDoreczeniaOutbound) -> None:
    simulator.arm("http400", method="POST")

    with pytest.raises(PermanentDeliveryError, match="refused"):
        outbound.deliver(decision(CITIZEN))


def test_asking_for_an_unknown_message_is_permanent(client: EDoreczeniaClient) -> None:
    with pytest.raises(PermanentDeliveryError, match="message_not_found"):
        client.get_message(CITIZEN, "no-such-message")


def test_a_timeout_is_transient(simulator: RunningSimulator) -> None:
    client = EDoreczeniaClient(
        simulator.api_url,
        simulator.token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        timeout_s=0.3,
    )
    simulator.arm("delay", method="GET", delay_s=1.0)

    with pytest.raises(TransientDeliveryError, match="in transit"):
        client.list_messages(CITIZEN)


def test_an_unreachable_service_is_transient() -> None:
    client = EDoreczeniaClient(
        "http://127.0.0.1:9/api/v1",
        "http://127.0.0.1:9/oauth2/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        timeout_s=1.0,
    )

    with pytest.raises(TransientDeliveryError, match="unreachable"):
        client.list_messages(CITIZEN)


def test_addressees_outside_the_envelope_rules_are_permanent_and_nothing_is_sent(
    simulator: RunningSimulator, outbound: EDoreczeniaOutbound
) -> None:
    too_many = ",".join(f"AE:PL-{index:05d}-00000-00000-00" for index in range(16))

    for recipients in ("", "jan.kowalski@example.com", too_many):
        with pytest.raises(PermanentDeliveryError):
            outbound.deliver(decision(recipients))

    assert simulator.admin("GET", "stats").get("requests", 0) == 0


def test_a_task_still_running_leaves_its_id_as_the_reference(
    simulator: RunningSimulator,
) -> None:
    simulator.admin("POST", "config", json={"task_pending_polls": 1000})
    adapter = outbound_for(simulator, task_wait_s=0.2)

    receipt = adapter.deliver(decision(CITIZEN))

    assert receipt.external_reference is not None
    assert receipt.external_reference.startswith("messageTaskId:task-")
    assert len(simulator.admin("GET", f"mailboxes/{CITIZEN}")) == 1
    adapter.stop()


def test_the_simulator_answers_a_request_outside_the_contract_with_400(
    simulator: RunningSimulator, client: EDoreczeniaClient
) -> None:
    token = requests.post(
        simulator.token_url,
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    ).json()["access_token"]

    answer = requests.post(
        f"{simulator.api_url}/{OFFICE}/messages",
        json={"messageMetadata": {"subject": "bez shippingService"}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )

    assert answer.status_code == 400
    (error,) = answer.json()
    assert error["error"] == "contract_violation"
    assert "shippingService" in error["error_description"]
    simulator.state.request_violations.clear()  # provoked on purpose


def test_the_simulator_refuses_calls_without_a_valid_token(simulator: RunningSimulator) -> None:
    for headers in ({}, {"Authorization": "Bearer forged"}):
        answer = requests.get(f"{simulator.api_url}/{OFFICE}/messages", headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_simulator_enforces_the_scopes_the_contract_names(simulator: RunningSimulator) -> None:
    token = requests.post(
        simulator.token_url,
        data={"grant_type": "client_credentials", "scope": "read_messages"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    reading = requests.get(f"{simulator.api_url}/{OFFICE}/messages", headers=headers, timeout=5)
    subscribing = requests.put(
        f"{simulator.api_url}/{OFFICE}/message_subscriptions",
        json={"messageCallbackUrl": "http://127.0.0.1:1/"},
        headers=headers,
        timeout=5,
    )

    assert reading.status_code == 200
    assert subscribing.status_code == 403
    assert subscribing.json()[0]["error"] == "insufficient_scope"


def test_the_standalone_simulator_serves_the_api_under_gunicorn() -> None:
    child, url = start_simulator("simulators.edoreczenia")
    try:
        client = EDoreczeniaClient(
            f"{url}/api/v1",
            f"{url}/oauth2/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            timeout_s=5.0,
        )
        message_id = send(client, [CITIZEN])

        assert [evidence.kind for evidence in client.evidences(OFFICE, message_id)] == [
            "A.1",
            "D.1",
        ]
        client.close()
    finally:
        assert child.stop() == 0


def test_listing_pages_through_the_mailbox_without_skipping_or_repeating(
    simulator: RunningSimulator, client: EDoreczeniaClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.edoreczenia.client.PAGE_SIZE", 2)
    for _ in range(5):
        send(client, [CITIZEN])
    simulator.arm("list_twice", times=10)

    listed = client.list_messages(CITIZEN)

    assert len({summary.message_id for summary in listed}) == len(listed) == 5
    assert simulator.admin("GET", "stats")["fault_list_twice"] == 3
