"""The tax simulator's rules, read through its Flask test client (no network)."""

from __future__ import annotations

import json

import pytest

from adapters.tax.outbound import is_json
from simulators.tax.server import DECLARATIONS_PATH, create_app

BODY = json.dumps({"form": "DN-1", "taxpayer": {"name": "Firma"}})


@pytest.fixture
def client():
    return create_app(sleep=lambda _s: None).test_client()


def post(client, body=BODY, key="k-1", content_type="application/json"):
    return client.post(
        DECLARATIONS_PATH, data=body, content_type=content_type, headers={"Idempotency-Key": key}
    )


def test_a_repeated_key_answers_200_with_the_first_declaration(client):
    first, again = post(client), post(client)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["declaration_id"] == again.json["declaration_id"]
    assert client.get("/_sim/stats").json["registered"] == 1


def test_a_key_reused_for_another_body_is_a_conflict(client):
    post(client)
    response = post(client, body=json.dumps({"form": "IN-1", "taxpayer": {"a": 1}}))
    assert response.status_code == 409
    assert response.json["title"] == "idempotency-key-reused"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "title"),
    [
        ("{not json", "application/json", 400, "not-json"),
        ("[]", "application/json", 400, "invalid-declaration"),
        ('{"form": ""}', "application/json", 400, "invalid-declaration"),
        ("<x/>", "application/xml", 415, "unsupported-media-type"),
    ],
)
def test_bad_input_gets_a_problem_with_a_code(client, body, content_type, status, title):
    response = post(client, body=body, content_type=content_type)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.json["title"] == title


def test_a_down_system_answers_503_with_retry_after(client):
    client.post("/_sim/faults", json={"kind": "down", "retry_after_s": 7})
    response = post(client)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/vnd.podatki+json", True),
        ("application/xml", False),
        ("text/xml", False),
    ],
)
def test_json_is_recognised_by_its_media_type(content_type, expected):
    assert is_json(content_type) is expected
