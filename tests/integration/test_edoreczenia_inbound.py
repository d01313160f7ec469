"""Receiving from e-Doręczenia: the polling inbound adapter and webhooks, against the simulator.

``accept`` is a small recording fake with the store's one rule that matters here: an
external id seen before is a duplicate. No RabbitMQ or database is needed.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import requests
from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer

from adapters.edoreczenia.client import EDoreczeniaClient
from adapters.edoreczenia.inbound import EDoreczeniaPollingInbound
from hub.envelope import Envelope
from hub.errors import InboundUnavailable, StoreUnavailable
from hub.region import InboundConfig, Office, Region
from hub.settings import Settings
from simulators.edoreczenia.contract import load_contract
from simulators.edoreczenia.mailboxes import SimulatorState
from simulators.edoreczenia.server import create_app
from simulators.serving import loopback_server

CLIENT_ID, CLIENT_SECRET = "hub-mazowsze", "sekret"
WARSZAWA = Office(
    "146501_1", "Urząd m.st. Warszawy", edoreczenia_address="AE:PL-14650-10000-AAAAA-01"
)
PRUSZKOW = Office(
    "1421", "Starostwo Powiatowe w Pruszkowie", edoreczenia_address="AE:PL-14210-00000-BBBBB-02"
)
NO_ADDRESS = Office("1432", "Starostwo bez skrzynki")
CITIZEN = "AE:PL-51234-56789-BCDEF-11"
PISMO = (
    b'<?xml version="1.0"?><Pismo xmlns="http://crd.gov.pl/wzor/2013/12/12/1410/"><T>x</T></Pismo>'
)


@dataclass
class RecordingAccept:
    """Records every call; answers like the store (``duplicate`` for a known external id)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False

    def __call__(
        self,
        envelope: Envelope,
        *,
        external_id: str | None = None,
        submitted_at: datetime | None = None,
        rejected_reason: str | None = None,
    ) -> str:
        if self.failing:
            raise StoreUnavailable("the database is down")
        seen = {call["external_id"] for call in self.calls}
        self.calls.append(
            {
                "envelope": envelope,
                "external_id": external_id,
                "submitted_at": submitted_at,
                "rejected_reason": rejected_reason,
            }
        )
        if external_id in seen:
            return "duplicate"
        return "rejected" if rejected_reason else "accepted"

    def stored(self) -> list[str]:
        """External ids stored once (what the store would hold)."""
        return list(dict.fromkeys(call["external_id"] for call in self.calls))


@dataclass
class RunningSimulator:
    url: str
    state: SimulatorState

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/_sim/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def inject(self, to: str, content: bytes, content_type: str, filename: str) -> str:
        attachment = {
            "filename": filename,
            "contentType": content_type,
            "content": base64.b64encode(content).decode("ascii"),
        }
        answer = self.admin(
            "POST",
            "messages",
            json={"to": to, "from": CITIZEN, "subject": "Wniosek", "attachments": [attachment]},
        )
        return str(answer["messageId"])


def serve(app: Flask) -> tuple[BaseWSGIServer, threading.Thread]:
    server = loopback_server(app)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    state = SimulatorState(clients={CLIENT_ID: CLIENT_SECRET})
    server, thread = serve(create_app(state, validate_responses=True, notify_timeout_s=1.0))
    yield RunningSimulator(f"http://127.0.0.1:{server.port}", state)
    server.shutdown()
    thread.join(5)
    assert state.request_violations == [], "the hub sent requests the contract forbids"
    assert state.response_violations == [], "the simulator answered outside the contract"


@pytest.fixture
def inbound(simulator: RunningSimulator) -> Iterator[EDoreczeniaPollingInbound]:
    region = Region(
        name="mazowsze",
        offices={office.id: office for office in (WARSZAWA, PRUSZKOW, NO_ADDRESS)},
        endpoints={},
        routes=(),
        inbound=(),
    )
    channel = InboundConfig(
        name="edoreczenia",
        kind="edoreczenia-poll",
        url=f"{simulator.url}/api/v1",
        options={
            "token_url": f"{simulator.url}/oauth2/token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "timeout_s": 2.0,
            "concurrency": 2,
        },
    )
    adapter = EDoreczeniaPollingInbound(channel, region, Settings())
    adapter.setup()
    yield adapter
    adapter.stop()


def test_each_message_reaches_accept_once_even_when_listed_twice(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    first = simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w.xml")
    second = simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w2.xml")
    third = simulator.inject(PRUSZKOW.edoreczenia_address, PISMO, "application/xml", "p.xml")
    simulator.admin("POST", "faults", json={"kind": "list_twice", "times": 2})
    accept = RecordingAccept()

    taken = inbound.poll_once(accept)

    assert taken == 3
    assert sorted(call["external_id"] for call in accept.calls) == sorted(
        [
            f"edoreczenia:{WARSZAWA.edoreczenia_address}:{first}",
            f"edoreczenia:{WARSZAWA.edoreczenia_address}:{second}",
            f"edoreczenia:{PRUSZKOW.edoreczenia_address}:{third}",
        ]
    )
    assert simulator.admin("GET", "stats")["fault_list_twice"] == 2


def test_the_envelope_carries_the_document_and_where_it_came_from(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    message_id = simulator.inject(PRUSZKOW.edoreczenia_address, PISMO, "application/xml", "p.xml")
    accept = RecordingAccept()

    inbound.poll_once(accept)

    (call,) = accept.calls
    envelope: Envelope = call["envelope"]
    assert envelope.document_type == "http://crd.gov.pl/wzor/2013/12/12/1410/"
    assert envelope.source == "edoreczenia"
    assert envelope.destination.office == "1421"
    assert envelope.body == PISMO
    assert envelope.content_type == "application/xml"
    assert envelope.headers["edoreczenia-message-id"] == message_id
    assert envelope.headers["edoreczenia-sender"] == CITIZEN
    assert call["rejected_reason"] is None
    assert call["submitted_at"] is not None


def test_a_polled_message_is_labelled_and_not_offered_again(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w.xml")
    accept = RecordingAccept()

    assert inbound.poll_once(accept) == 1
    assert inbound.poll_once(accept) == 0

    (message,) = simulator.admin("GET", f"mailboxes/{WARSZAWA.edoreczenia_address}")
    assert message["labels"] == ["INBOX", "HUB_PRZYJETE"]
    assert len(accept.calls) == 1


def test_a_message_is_labelled_only_after_accept_returned(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w.xml")

    with pytest.raises(StoreUnavailable):
        inbound.poll_once(RecordingAccept(failing=True))

    (message,) = simulator.admin("GET", f"mailboxes/{WARSZAWA.edoreczenia_address}")
    assert message["labels"] == ["INBOX"]
    accept = RecordingAccept()
    assert inbound.poll_once(accept) == 1
    assert len(accept.stored()) == 1


def test_a_failed_label_makes_the_next_poll_a_harmless_duplicate(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w.xml")
    simulator.admin("POST", "faults", json={"kind": "http500", "method": "PATCH"})
    accept = RecordingAccept()

    inbound.poll_once(accept)
    inbound.poll_once(accept)

    assert len(accept.calls) == 2
    assert len(accept.stored()) == 1


def test_documents_that_are_not_xml_are_typed_by_content_type_and_bad_xml_is_rejected(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    simulator.inject(WARSZAWA.edoreczenia_address, b"%PDF-1.7 ...", "application/pdf", "w.pdf")
    simulator.inject(PRUSZKOW.edoreczenia_address, b"<Pismo><unclosed>", "text/xml", "p.xml")
    accept = RecordingAccept()

    inbound.poll_once(accept)

    by_office = {call["envelope"].destination.office: call for call in accept.calls}
    assert by_office["146501_1"]["envelope"].document_type == "application/pdf"
    assert by_office["146501_1"]["rejected_reason"] is None
    assert by_office["1421"]["envelope"].document_type == "unparseable"
    assert "malformed-document" in by_office["1421"]["rejected_reason"]


def test_a_failing_mailbox_does_not_stop_the_others(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w.xml")
    simulator.inject(PRUSZKOW.edoreczenia_address, PISMO, "application/xml", "p.xml")
    simulator.admin(
        "POST",
        "faults",
        json={"kind": "http500", "path_contains": PRUSZKOW.edoreczenia_address, "times": 1},
    )
    accept = RecordingAccept()

    with pytest.raises(InboundUnavailable, match=PRUSZKOW.edoreczenia_address):
        inbound.poll_once(accept)

    assert [call["envelope"].destination.office for call in accept.calls] == ["146501_1"]
    inbound.poll_once(accept)
    assert len(accept.stored()) == 2


def test_a_subscribed_webhook_is_called_for_each_new_message(
    simulator: RunningSimulator,
) -> None:
    received: list[dict[str, Any]] = []
    arrived = threading.Event()
    receiver = Flask("webhook-receiver")

    @receiver.post("/edoreczenia/notifications")
    def notification() -> Response:
        received.append(request.get_json())
        arrived.set()
        return jsonify({"status": "OK"})

    server, thread = serve(receiver)
    client = EDoreczeniaClient(
        f"{simulator.url}/api/v1",
        f"{simulator.url}/oauth2/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        timeout_s=2.0,
    )
    try:
        callback = f"http://127.0.0.1:{server.port}/edoreczenia/notifications"
        assert client.subscribe(WARSZAWA.edoreczenia_address, callback).startswith("sub-")
        message_id = simulator.inject(
            WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w.xml"
        )

        assert arrived.wait(5), "no notification arrived"
    finally:
        client.close()
        server.shutdown()
        thread.join(5)

    (statement,) = received
    assert load_contract().schema_violations("MessageStatement", statement) == []
    assert statement["eDeliveryAddress"] == WARSZAWA.edoreczenia_address
    assert statement["notificationType"] == "NewMessage"
    assert [item["id"] for item in statement["notification"]] == [message_id]
    # The simulator counts the call once the receiver's answer is back: wait for it.
    deadline = time.monotonic() + 5
    while simulator.admin("GET", "stats").get("notifications_delivered") != 1:
        assert time.monotonic() < deadline, "the simulator never saw the webhook answered"
        time.sleep(0.02)


def test_a_message_that_cannot_be_read_does_not_block_the_ones_behind_it(
    simulator: RunningSimulator, inbound: EDoreczeniaPollingInbound
) -> None:
    stuck = simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w.xml")
    behind = simulator.inject(WARSZAWA.edoreczenia_address, PISMO, "application/xml", "w2.xml")
    simulator.admin("POST", "faults", json={"kind": "http400", "path_contains": stuck})
    accept = RecordingAccept()

    with pytest.raises(InboundUnavailable, match=stuck):
        inbound.poll_once(accept)

    assert [call["envelope"].headers["edoreczenia-message-id"] for call in accept.calls] == [behind]
    assert inbound.poll_once(accept) == 1
    assert len(accept.stored()) == 2
