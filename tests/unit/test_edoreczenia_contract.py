"""The e-Doręczenia UA API contract as the adapter reads it: addresses, bodies, answers."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from adapters.edoreczenia.contract import (
    MAX_RECIPIENTS,
    AnswerShapeError,
    attachment_content,
    canonical_evidence_kind,
    evidence_entries,
    json_patch_add_label,
    message_request,
    message_summaries,
    message_task_id,
    parse_timestamp,
    received_message,
    task_finished,
    task_outcome,
    validate_address,
    validate_recipients,
)
from hub.errors import SchemaViolation
from simulators.edoreczenia.contract import load_contract

SENDER = "AE:PL-14650-10000-AAAAA-01"
CITIZEN = "AE:PL-51234-56789-BCDEF-11"


@pytest.mark.parametrize(
    "address",
    ["AE:PL-12345-67890-ABCDE-12", "  AE:PL-00000-00000-00000-00 ", "AE:PL-A1B2C-3D4E5-F6G7H-99"],
)
def test_valid_addresses_are_accepted_without_surrounding_blanks(address: str) -> None:
    assert validate_address(address) == address.strip()


@pytest.mark.parametrize(
    "address",
    [
        "",
        "AE:PL-12345-67890-ABCDE",
        "AE:PL-12345-67890-ABCDE-1A",
        "ae:pl-12345-67890-abcde-12",
        "AE:DE-12345-67890-ABCDE-12",
        "jan.kowalski@example.com",
        "/umwarszawa/skrytka",
    ],
)
def test_malformed_addresses_are_a_schema_violation(address: str) -> None:
    with pytest.raises(SchemaViolation, match="not an e-Doręczenia address") as caught:
        validate_address(address, role="recipient")
    assert caught.value.path == "recipient"


def test_recipients_are_deduplicated_in_order() -> None:
    assert validate_recipients([CITIZEN, SENDER, CITIZEN, " "]) == (CITIZEN, SENDER)


def test_a_message_needs_one_to_fifteen_recipients() -> None:
    many = [f"AE:PL-{index:05d}-00000-00000-00" for index in range(MAX_RECIPIENTS + 1)]

    assert len(validate_recipients(many[:MAX_RECIPIENTS])) == MAX_RECIPIENTS
    with pytest.raises(SchemaViolation, match="at most 15"):
        validate_recipients(many)
    with pytest.raises(SchemaViolation, match="at least one"):
        validate_recipients([])


def test_the_message_body_is_valid_against_the_contracts_message_schema() -> None:
    document = b"<Decyzja xmlns='urn:test'/>"

    body = message_request(
        sender=SENDER,
        recipients=[CITIZEN],
        subject="Decyzja",
        body=document,
        filename="decyzja.xml",
        content_type="application/xml",
        file_id="F-1",
        additional_data={"hubEnvelopeId": "e-1"},
    )

    assert load_contract().schema_violations("Message", body) == []
    metadata = body["messageMetadata"]
    assert metadata["shippingService"] == "electronic"
    assert metadata["from"] == {"eDeliveryAddress": SENDER}
    assert metadata["to"] == [{"eDeliveryAddress": CITIZEN}]
    (attachment,) = body["attachments"]
    assert base64.b64decode(attachment["file"]["file"]) == document
    assert attachment["file"]["fileMetadata"] == {
        "fileId": "F-1",
        "filename": "decyzja.xml",
        "contentType": "application/xml",
        "size": len(document),
        "alg": "SHA-3",
        "hash": hashlib.sha3_256(document).hexdigest(),
    }


def test_the_label_patch_is_valid_against_the_contracts_patch_body() -> None:
    assert load_contract().schema_violations("PatchBody", json_patch_add_label("X")) == []


def test_evidences_are_parsed_sorted_by_event_time_with_dotted_kinds() -> None:
    answer = {
        "evidences": [
            {
                "evidenceId": "e2",
                "messageId": "m",
                "type": "D1",
                "eventDate": "2025-03-01T10:00:05Z",
            },
            {
                "evidenceId": "e1",
                "messageId": "m",
                "type": "A.1",
                "createDate": "2025-03-01T10:00:00Z",
                "to": {"eDeliveryAddress": CITIZEN},
            },
            {
                "evidenceId": "e3",
                "messageId": "m",
                "type": "HEPO",
                "eventDate": "2025-03-02T08:00:00Z",
            },
        ]
    }

    entries = evidence_entries(answer)

    assert [(entry.evidence_id, entry.kind) for entry in entries] == [
        ("e1", "A.1"),
        ("e2", "D.1"),
        ("e3", "H.EPO"),
    ]
    assert entries[0].issued_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert entries[0].recipient == CITIZEN
    evidence = entries[0].with_document(b"<dowod/>")
    assert (evidence.kind, evidence.document, evidence.message_id) == ("A.1", b"<dowod/>", "m")


@pytest.mark.parametrize(
    "item",
    [
        {"messageId": "m", "type": "A.1", "eventDate": "2025-03-01T10:00:00Z"},
        {"evidenceId": "e", "messageId": "m", "eventDate": "2025-03-01T10:00:00Z"},
        {"evidenceId": "e", "messageId": "m", "type": "A.1"},
        {"evidenceId": "e", "messageId": "m", "type": "A.1", "eventDate": "yesterday"},
    ],
)
def test_an_evidence_missing_what_the_hub_needs_is_an_answer_shape_error(
    item: dict[str, str],
) -> None:
    with pytest.raises(AnswerShapeError):
        evidence_entries({"evidences": [item]})


def test_unknown_evidence_codes_are_kept_as_given() -> None:
    assert canonical_evidence_kind("E2") == "E.2"
    assert canonical_evidence_kind("BPWX") == "BP.WX"
    assert canonical_evidence_kind("Z.9") == "Z.9"


def test_timestamps_are_aware() -> None:
    assert parse_timestamp("2017-07-21T17:32:28Z") == datetime(2017, 7, 21, 17, 32, 28, tzinfo=UTC)
    assert parse_timestamp("2017-07-21T17:32:28").tzinfo is UTC


def test_the_sending_task_answers_are_read() -> None:
    assert message_task_id({"messageTaskId": "t-1"}) == "t-1"
    assert task_finished({"messageTaskStatus": "FINISHED"}) is True
    assert task_finished({"messageTaskStatus": "PENDING"}) is False
    with pytest.raises(AnswerShapeError):
        message_task_id({"warning": "skrzynka prawie pełna"})
    with pytest.raises(AnswerShapeError):
        task_finished({"messageTaskStatus": "DONE"})


def test_a_task_reports_message_ids_once_and_refused_addressees() -> None:
    outcome = task_outcome(
        [
            {"messageId": "m-1", "addressee": {"eDeliveryAddress": CITIZEN}},
            {"messageId": "m-1", "addresseeAde": SENDER},
            {
                "addressee": {"eDeliveryAddress": "AE:PL-1"},
                "error": "E42",
                "error_description": "?",
            },
        ]
    )

    assert outcome.message_ids == ("m-1",)
    assert outcome.refusals == ("AE:PL-1: E42 ?",)


def test_a_listing_gives_ids_labels_and_total() -> None:
    answer = {
        "messages": [
            {
                "messageMetadata": {"messageId": "m-1", "shippingService": "electronic"},
                "messageControlData": {"labels": [{"label": "INBOX"}, {"label": "X"}]},
            },
            {"messageMetadata": {"messageId": "m-2", "shippingService": "electronic"}},
        ],
        "resultSize": 2,
        "total": 7,
    }

    summaries, total = message_summaries(answer)

    assert [(item.message_id, item.labels) for item in summaries] == [
        ("m-1", frozenset({"INBOX", "X"})),
        ("m-2", frozenset()),
    ]
    assert total == 7


def test_a_full_message_lists_its_attachments_in_order() -> None:
    answer = [
        {
            "messageMetadata": {
                "messageId": "m-1",
                "shippingService": "electronic",
                "from": {"eDeliveryAddress": CITIZEN},
                "subject": "Wniosek",
                "submissionDate": "2025-03-01T10:00:00Z",
            },
            "textBody": "W załączeniu wniosek",
            "attachments": [
                {"attachmentId": "a-2", "order": 2, "file": {"fileMetadata": {"fileId": "f"}}},
                {
                    "attachmentId": "a-1",
                    "order": 1,
                    "file": {"fileMetadata": {"fileId": "f", "contentType": "application/pdf"}},
                },
            ],
        }
    ]

    message = received_message(answer)

    assert [item.attachment_id for item in message.attachments] == ["a-1", "a-2"]
    assert message.attachments[0].content_type == "application/pdf"
    assert message.attachments[1].content_type == "application/octet-stream"
    assert (message.sender, message.subject, message.text_body) == (
        CITIZEN,
        "Wniosek",
        "W załączeniu wniosek",
    )
    with pytest.raises(AnswerShapeError, match="one message"):
        received_message([])


def test_attachment_content_is_checked_against_its_hash() -> None:
    content = b"%PDF-1.7"
    metadata = {"fileId": "f", "alg": "SHA-3", "hash": hashlib.sha3_256(content).hexdigest()}
    encoded = base64.b64encode(content).decode()

    assert attachment_content({"file": {"fileMetadata": metadata, "file": encoded}}) == content
    tampered = {**metadata, "hash": "00"}
    with pytest.raises(AnswerShapeError, match="hash"):
        attachment_content({"file": {"fileMetadata": tampered, "file": encoded}})
    with pytest.raises(AnswerShapeError, match="base64"):
        attachment_content({"file": {"fileMetadata": metadata, "file": "not base64!"}})
    with pytest.raises(AnswerShapeError, match="no file content"):
        attachment_content({"file": {"fileMetadata": metadata}})
