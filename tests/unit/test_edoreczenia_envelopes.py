"""Building envelopes from e-Doręczenia messages and messages from envelopes, without a network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.edoreczenia.client import (
    access_token,
    refusal,
    required_options,
    retry_after_seconds,
)
from adapters.edoreczenia.contract import AttachmentInfo, ReceivedMessage
from adapters.edoreczenia.inbound import (
    ReceivedDocument,
    document_type_of,
    external_id,
    inbound_envelope,
    main_attachment,
)
from adapters.edoreczenia.outbound import (
    EDoreczeniaOutbound,
    filename_of,
    recipients_of,
    trace_data,
)
from hub.adapters import OutboundAdapter, PollingInbound, load_adapter_kind
from hub.envelope import Address, Envelope
from hub.errors import (
    ConfigurationError,
    PermanentDeliveryError,
    SchemaViolation,
    TransientDeliveryError,
)
from hub.region import EndpointConfig, InboundConfig, Office, Region
from hub.settings import Settings
from hub.signing.keystore import init_test_pki

OFFICE = Office(
    "146501_1", "Urząd m.st. Warszawy", edoreczenia_address="AE:PL-14650-10000-AAAAA-01"
)
CITIZEN = "AE:PL-51234-56789-BCDEF-11"
PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"


def received(*attachments: AttachmentInfo) -> ReceivedMessage:
    return ReceivedMessage(
        message_id="m-1",
        sender=CITIZEN,
        subject="Wniosek o wydanie zaświadczenia",
        submitted_at=datetime(2025, 3, 1, 10, tzinfo=UTC),
        attachments=attachments,
    )


def outgoing(**headers: str) -> Envelope:
    return Envelope(
        document_type="urn:test:decyzja",
        source="eod",
        destination=Address("146501_1", "edoreczenia"),
        body=b"<Decyzja/>",
        headers=headers,
    )


def endpoint(**options: Any) -> EndpointConfig:
    return EndpointConfig(
        name="edoreczenia@146501_1",
        kind="edoreczenia-rest",
        office="146501_1",
        system="edoreczenia",
        url="http://127.0.0.1:1/api/v1",
        options=options,
    )


def response(status: int, body: Any = None, **headers: str) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.headers.update(headers)
    answer._content = json.dumps(body).encode() if body is not None else b""
    return answer


def test_an_xml_document_is_typed_by_its_root_namespace() -> None:
    document = ReceivedDocument(
        f'<Pismo xmlns="{PISMO_OGOLNE}"/>'.encode(), "application/xml", "pismo.xml"
    )

    envelope, reason = inbound_envelope(OFFICE, received(), document)

    assert reason is None
    assert envelope.document_type == PISMO_OGOLNE
    assert envelope.source == "edoreczenia"
    assert envelope.destination == Address("146501_1")
    assert envelope.body == document.content
    assert envelope.content_type == "application/xml"
    assert envelope.headers["edoreczenia-message-id"] == "m-1"
    assert envelope.headers["edoreczenia-sender"] == CITIZEN
    assert envelope.headers["subject"] == "Wniosek o wydanie zaświadczenia"
    assert envelope.headers["filename"] == "pismo.xml"


@pytest.mark.parametrize(
    ("document", "expected_type", "rejected"),
    [
        (ReceivedDocument(b"%PDF-1.7", "application/pdf", "a.pdf"), "application/pdf", False),
        (ReceivedDocument(b"<Pismo/>", "text/xml; charset=utf-8", ""), "text/xml", False),
        (
            ReceivedDocument(b"<a xmlns='urn:x'/>", "application/octet-stream", "a.XML"),
            "urn:x",
            False,
        ),
        (ReceivedDocument(b"<Pismo><a>", "application/xml", "p.xml"), "unparseable", True),
        (
            ReceivedDocument(b'<!DOCTYPE x [<!ENTITY e "e">]><x/>', "application/xml", ""),
            "unparseable",
            True,
        ),
    ],
)
def test_documents_are_typed_and_bad_xml_is_rejected(
    document: ReceivedDocument, expected_type: str, rejected: bool
) -> None:
    document_type, reason = document_type_of(document)

    assert document_type == expected_type
    assert (reason is not None) is rejected


def test_the_main_attachment_is_the_first_xml_one_else_the_first() -> None:
    pdf = AttachmentInfo("a-1", 1, "skan.pdf", "application/pdf")
    xml = AttachmentInfo("a-2", 2, "wniosek.xml", "application/xml")
    signature = AttachmentInfo("a-3", 3, "wniosek.xml.xades", "application/octet-stream")

    assert main_attachment((signature, xml, pdf)) == xml
    assert main_attachment((signature, pdf)) == pdf
    assert main_attachment(()) is None


def test_the_external_id_names_the_mailbox_and_the_message() -> None:
    assert external_id(CITIZEN, "m-1") == f"edoreczenia:{CITIZEN}:m-1"


def test_recipients_come_from_the_comma_separated_header() -> None:
    envelope = outgoing(**{"edoreczenia-recipients": f" {CITIZEN},, {OFFICE.edoreczenia_address} "})

    assert recipients_of(envelope) == [CITIZEN, OFFICE.edoreczenia_address]
    with pytest.raises(SchemaViolation, match="no addressee"):
        recipients_of(outgoing())


def test_the_attachment_name_comes_from_the_header_or_the_content_type() -> None:
    assert filename_of(outgoing(filename="decyzja-7.xml")) == "decyzja-7.xml"
    assert filename_of(outgoing()) == "pismo.xml"


def test_the_message_carries_the_hubs_ids_for_tracing() -> None:
    envelope = outgoing()

    assert trace_data(envelope) == {
        "hubEnvelopeId": str(envelope.envelope_id),
        "hubCorrelationId": envelope.correlation_id,
    }


def test_an_endpoint_without_credentials_or_with_a_bad_sender_does_not_start() -> None:
    complete = {
        "token_url": "http://127.0.0.1:1/oauth2/token",
        "client_id": "hub",
        "client_secret": "s",
        "sender_address": OFFICE.edoreczenia_address,
    }

    EDoreczeniaOutbound(endpoint(**complete), Settings())
    with pytest.raises(ConfigurationError, match="client_secret"):
        EDoreczeniaOutbound(endpoint(**{**complete, "client_secret": ""}), Settings())
    with pytest.raises(ConfigurationError, match="sender"):
        EDoreczeniaOutbound(endpoint(**{**complete, "sender_address": "urzad"}), Settings())


def test_an_envelope_with_bad_addressees_is_permanent_before_any_call(tmp_path: Path) -> None:
    init_test_pki(tmp_path / "keys", tmp_path / "trust", ["edoreczenia"])
    adapter = EDoreczeniaOutbound(
        endpoint(
            token_url="http://127.0.0.1:1/oauth2/token",
            client_id="hub",
            client_secret="s",
            sender_address=OFFICE.edoreczenia_address,
        ),
        Settings(var_dir=tmp_path),
    )
    adapter.setup()

    with pytest.raises(PermanentDeliveryError, match="not an e-Doręczenia address"):
        adapter.deliver(outgoing(**{"edoreczenia-recipients": "jan@example.com"}))
    adapter.stop()


def test_the_outbound_adapter_will_not_start_without_the_providers_pinned_certificate(
    tmp_path: Path,
) -> None:
    adapter = EDoreczeniaOutbound(
        endpoint(
            token_url="http://127.0.0.1:1/oauth2/token",
            client_id="hub",
            client_secret="s",
            sender_address=OFFICE.edoreczenia_address,
        ),
        Settings(var_dir=tmp_path),
    )

    with pytest.raises(ConfigurationError, match=r"platforms/edoreczenia\.pem is missing"):
        adapter.setup()


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    now = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)

    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds("Sat, 01 Mar 2025 10:01:00 GMT", now) == 60.0
    assert retry_after_seconds("Sat, 01 Mar 2025 09:00:00 GMT", now) == 0.0
    assert retry_after_seconds("") is None
    assert retry_after_seconds("soon") is None


def test_statuses_map_to_transient_or_permanent_errors() -> None:
    throttled = refusal(
        "POST /x",
        response(
            429, [{"error": "limit", "error_description": "za dużo"}], **{"Retry-After": "12"}
        ),
    )
    unavailable = refusal("POST /x", response(503))
    refused = refusal(
        "POST /x", response(400, [{"error": "E1", "error_description": "zły adresat"}])
    )
    forbidden = refusal("POST /x", response(403))

    assert isinstance(throttled, TransientDeliveryError)
    assert throttled.retry_after_s == 12.0
    assert "limit: za dużo" in throttled.reason
    assert isinstance(unavailable, TransientDeliveryError)
    assert unavailable.retry_after_s is None
    assert isinstance(refused, PermanentDeliveryError)
    assert "E1: zły adresat" in refused.reason
    assert isinstance(forbidden, PermanentDeliveryError)


def test_token_answers_are_parsed() -> None:
    token = access_token({"access_token": "abc", "token_type": "Bearer", "expires_in": 3600})

    assert (token.value, token.expires_in_s) == ("abc", 3600.0)
    assert access_token({"access_token": "abc"}).expires_in_s == 60.0
    with pytest.raises(PermanentDeliveryError):
        access_token({"error": "invalid_client"})


def test_required_options_name_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match="token_url, client_id"):
        required_options("channel edoreczenia", {"client_secret": "s"})
    assert required_options("x", {"token_url": "u", "client_id": "c", "client_secret": 1}) == {
        "token_url": "u",
        "client_id": "c",
        "client_secret": "1",
    }


def test_the_adapters_are_found_by_their_kinds_and_fulfil_the_hubs_protocols() -> None:
    outbound = load_adapter_kind("edoreczenia-rest")(
        endpoint(
            token_url="http://127.0.0.1:1/oauth2/token",
            client_id="hub",
            client_secret="s",
            sender_address=OFFICE.edoreczenia_address,
        ),
        Settings(),
    )
    channel = InboundConfig(
        name="edoreczenia",
        kind="edoreczenia-poll",
        url="http://127.0.0.1:1/api/v1",
        options={
            "token_url": "http://127.0.0.1:1/oauth2/token",
            "client_id": "h",
            "client_secret": "s",
        },
    )
    region = Region("r", {OFFICE.id: OFFICE}, {}, (), ())
    inbound = load_adapter_kind("edoreczenia-poll")(channel, region, Settings())

    assert isinstance(outbound, OutboundAdapter)
    assert isinstance(inbound, PollingInbound)
