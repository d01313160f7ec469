"""The e-Doręczenia simulator through Flask's test client (no sockets): tokens, contract, faults."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree

from simulators.edoreczenia.mailboxes import EVIDENCE_NAMESPACE, IncomingDocument, SimulatorState
from simulators.edoreczenia.server import create_app

CLIENT_ID, CLIENT_SECRET = "hub", "sekret"
OFFICE = "AE:PL-14650-10000-AAAAA-01"
CITIZEN = "AE:PL-51234-56789-BCDEF-11"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> Iterator[SimulatorState]:
    state = SimulatorState(clients={CLIENT_ID: CLIENT_SECRET}, token_lifetime_s=60.0, clock=clock)
    yield state
    assert state.response_violations == []


@pytest.fixture
def http(state: SimulatorState) -> FlaskClient:
    return create_app(state, validate_responses=True).test_client()


def bearer(http: FlaskClient, scope: str = "") -> dict[str, str]:
    answer = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert answer.status_code == 200
    return {"Authorization": f"Bearer {answer.json['access_token']}"}


def inject(state: SimulatorState, to: str = OFFICE) -> str:
    message_id, _ = state.inject(
        to, CITIZEN, "Wniosek", [IncomingDocument("w.xml", "application/xml", b"<w/>")]
    )
    return message_id


def test_the_token_endpoint_issues_client_credentials_tokens(http: FlaskClient) -> None:
    answer = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert answer.status_code == 200
    assert answer.json["token_type"] == "Bearer"
    assert answer.json["expires_in"] == 60
    assert set(answer.json["scope"].split()) == {
        "read_messages",
        "write_messages",
        "read_settings",
        "write_settings",
    }
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("form", "auth", "status", "error"),
    [
        (
            {"grant_type": "authorization_code"},
            (CLIENT_ID, CLIENT_SECRET),
            400,
            "unsupported_grant_type",
        ),
        ({"grant_type": "client_credentials"}, (CLIENT_ID, "zle"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "scope": "admin"},
            (CLIENT_ID, CLIENT_SECRET),
            400,
            "invalid_scope",
        ),
    ],
)
def test_the_token_endpoint_refuses_as_rfc_6749_says(
    http: FlaskClient, form: dict[str, str], auth: Any, status: int, error: str
) -> None:
    answer = http.post("/oauth2/token", data=form, auth=auth)

    assert answer.status_code == status
    assert answer.json["error"] == error


def test_credentials_in_the_form_are_accepted_too(http: FlaskClient) -> None:
    answer = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )

    assert answer.status_code == 200


def test_tokens_expire_after_their_lifetime(http: FlaskClient, clock: Clock) -> None:
    headers = bearer(http)
    assert http.get(f"/api/v1/{OFFICE}/messages", headers=headers).status_code == 200

    clock.now += 60.0

    answer = http.get(f"/api/v1/{OFFICE}/messages", headers=headers)
    assert answer.status_code == 401
    assert answer.json["error"] == "invalid_token"


def test_query_parameters_outside_the_contract_are_refused(
    http: FlaskClient, state: SimulatorState
) -> None:
    answer = http.get(f"/api/v1/{OFFICE}/messages?limit=5000", headers=bearer(http))

    assert answer.status_code == 400
    assert answer.json[0]["error"] == "contract_violation"
    assert state.stats["contract_violations"] == 1


def test_listing_filters_by_label_and_opened(http: FlaskClient, state: SimulatorState) -> None:
    first, second = inject(state), inject(state)
    headers = bearer(http)
    http.get(f"/api/v1/{OFFICE}/messages/{first}?format=full", headers=headers)

    unopened = http.get(
        f"/api/v1/{OFFICE}/messages?label=INBOX&opened=false&format=metadata", headers=headers
    )
    sent = http.get(f"/api/v1/{OFFICE}/messages?label=SENT", headers=headers)

    assert [item["messageMetadata"]["messageId"] for item in unopened.json["messages"]] == [second]
    assert sent.json["messages"] == []


def test_reading_in_full_format_issues_the_e1_evidence_once(state: SimulatorState) -> None:
    message_id = inject(state)
    (copy,) = state.mailbox(OFFICE)
    (original,) = state.mailbox(CITIZEN)

    state.read(OFFICE, [message_id], "full")
    state.read(OFFICE, [message_id], "fullExtended")

    assert [evidence.kind for evidence in original.evidences] == ["A.1", "D.1", "E.1"]
    assert copy.opened
    assert original.status == "Doręczona"


def test_only_label_patches_are_supported(http: FlaskClient, state: SimulatorState) -> None:
    message_id = inject(state)
    headers = bearer(http)
    url = f"/api/v1/{OFFICE}/messages/{message_id}/message_control_data"

    added = http.patch(
        url, json=[{"op": "add", "path": "/labels/-", "value": {"label": "X"}}], headers=headers
    )
    removed = http.patch(url, json=[{"op": "remove", "path": "/labels/1"}], headers=headers)
    refused = http.patch(
        url, json=[{"op": "replace", "path": "/opened", "value": {"v": True}}], headers=headers
    )

    assert added.json[0]["labels"] == [{"label": "INBOX"}, {"label": "X"}]
    assert removed.json[0]["labels"] == [{"label": "INBOX"}]
    assert refused.status_code == 400
    assert refused.json[0]["error"] == "unsupported_patch"


def test_a_sender_may_not_send_from_another_mailbox(http: FlaskClient) -> None:
    content = base64.b64encode(b"<d/>").decode()
    body = {
        "messageMetadata": {
            "from": {"eDeliveryAddress": CITIZEN},
            "to": [{"eDeliveryAddress": OFFICE}],
            "shippingService": "electronic",
        },
        "attachments": [{"file": {"fileMetadata": {"fileId": "f"}, "file": content}}],
    }

    answer = http.post(f"/api/v1/{OFFICE}/messages", json=body, headers=bearer(http))

    assert answer.status_code == 400
    assert answer.json[0]["error"] == "sender_mismatch"


def test_hybrid_evidences_are_not_simulated(http: FlaskClient) -> None:
    answer = http.get(f"/api/v1/{OFFICE}/evidences/puh/e-1", headers=bearer(http))

    assert answer.status_code == 400
    assert answer.json[0]["error"] == "not_hybrid"


def test_list_twice_applies_only_to_listings(http: FlaskClient, state: SimulatorState) -> None:
    message_id = inject(state)
    headers = bearer(http)
    http.post("/_sim/faults", json={"kind": "list_twice"})

    read = http.get(f"/api/v1/{OFFICE}/messages/{message_id}", headers=headers)
    listed = http.get(f"/api/v1/{OFFICE}/messages", headers=headers)
    again = http.get(f"/api/v1/{OFFICE}/messages", headers=headers)

    assert len(read.json) == 1
    assert len(listed.json["messages"]) == 2
    assert len(again.json["messages"]) == 1


def test_faults_apply_to_the_calls_they_match_as_many_times_as_armed(
    http: FlaskClient,
) -> None:
    headers = bearer(http)
    http.post(
        "/_sim/faults", json={"kind": "http429", "method": "GET", "times": 2, "retry_after_s": 9}
    )

    answers = [http.get(f"/api/v1/{OFFICE}/messages", headers=headers) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "9"
    assert http.post("/_sim/faults", json={"kind": "meteor"}).status_code == 400


def test_paths_the_simulator_does_not_serve_answer_404(http: FlaskClient) -> None:
    answer = http.get(f"/api/v1/{OFFICE}/drafts", headers=bearer(http))

    assert answer.status_code == 404
    assert answer.json[0]["error"] == "not_served"


def test_reset_forgets_everything(http: FlaskClient, state: SimulatorState) -> None:
    inject(state)
    bearer(http)

    http.post("/_sim/reset")

    assert http.get("/_sim/stats").json == {
        "messages": 0,
        "evidences": 0,
        "tokens": 0,
        "request_violations": 0,
        "response_violations": 0,
    }


def test_every_evidence_carries_the_providers_enveloped_xades_signature(
    http: FlaskClient, state: SimulatorState
) -> None:
    inject(state)
    (original,) = state.mailbox(CITIZEN)

    identity = http.get("/_sim/identity").json
    for evidence in original.evidences:
        root = etree.fromstring(evidence.document)
        signature = root.find(f"{{{DS}}}Signature")
        assert signature is not None, "enveloped: the signature is a child of the evidence"
        assert signature.find(f".//{{{XADES}}}SignedProperties") is not None
        certificate = "".join(signature.findtext(f".//{{{DS}}}X509Certificate", "").split())
        assert certificate in "".join(identity["certificate_pem"].splitlines())
    assert identity["subject"].startswith("CN=edoreczenia,")


def test_a_forged_evidence_is_handed_out_once_for_the_armed_type_and_nothing_else_changes(
    http: FlaskClient, state: SimulatorState
) -> None:
    headers = bearer(http)
    inject(state)
    (original,) = state.mailbox(CITIZEN)
    a1, d1 = original.evidences
    armed = http.post("/_sim/faults", json={"kind": "forged_evidence", "evidence_type": "D.1"})
    assert armed.status_code == 201

    listing = http.get(f"/api/v1/{CITIZEN}/messages", headers=headers)
    first_a1 = http.get(f"/api/v1/{CITIZEN}/evidences/purde/{a1.evidence_id}", headers=headers)
    forged = http.get(f"/api/v1/{CITIZEN}/evidences/purde/{d1.evidence_id}", headers=headers)
    again = http.get(f"/api/v1/{CITIZEN}/evidences/purde/{d1.evidence_id}", headers=headers)

    assert listing.status_code == 200, "the guard in front of every call leaves it alone"
    assert first_a1.data == a1.document
    assert again.data == d1.document
    assert forged.data != d1.document
    # The same signature over a changed event time: a day earlier than signed.
    stored, tampered = etree.fromstring(d1.document), etree.fromstring(forged.data)
    moment = f"{{{EVIDENCE_NAMESPACE}}}czasZdarzenia"
    assert tampered.findtext(moment) != stored.findtext(moment)
    assert etree.tostring(tampered.find(f"{{{DS}}}Signature")) == etree.tostring(
        stored.find(f"{{{DS}}}Signature")
    )
    assert state.stats["fault_forged_evidence"] == 1
