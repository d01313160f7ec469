"""Every JSON answer of the dashboard's API, from a real store, holds to monitoring/openapi.yaml."""

from __future__ import annotations

import json

import pytest
from dashboard_support import OPERATOR_TOKEN, Traffic, bearer, with_accounts
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.testing import MockRequest

from hub.store.quarantine import RefusedInput, quarantine
from hub.web import create_app
from monitoring.alerts import AlertEvaluator
from monitoring.api import openapi_document


@pytest.fixture
def contract():
    # Problem documents are JSON under their own media type.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(openapi_document(), config=config)


@pytest.fixture
def client(settings, store, hub):
    return create_app(with_accounts(settings, store), store).test_client()


def check(contract, response):
    """Validate the request and the answer against the contract; raise on any mismatch."""
    request = WerkzeugOpenAPIRequest(response.request)
    contract.validate_request(request)
    contract.validate_response(request, WerkzeugOpenAPIResponse(response))
    return response


def test_the_served_document_is_the_contract(client):
    served = client.get("/api/openapi.json").json
    assert served == openapi_document()
    assert served["openapi"].startswith("3.0")


def test_every_read_answers_as_the_contract_says(contract, client, settings, store):
    traffic = Traffic(store)
    AlertEvaluator(store, settings, None).evaluate()
    for number in range(2):
        quarantine(store, RefusedInput("eod-intake", "bad", f"refusal {number}"))
    paths = [
        "/api/summary",
        "/api/overview?window=hour",
        "/api/overview?window=day",
        "/api/endpoints?sort=error_rate",
        "/api/offices?sort=oldest",
        "/api/queues",
        f"/api/search?q={traffic.delivered}",
        f"/api/messages/{traffic.delivered}",
        f"/api/messages/{traffic.dead}",
        "/api/receipts/late",
        "/api/dead",
        "/api/dead?limit=1",
        "/api/quarantine?limit=1",
        "/api/alerts",
        "/api/actions",
    ]
    for path in paths:
        response = client.get(path, headers=bearer())
        assert response.status_code == 200, path
        check(contract, response)


def test_actions_and_problems_answer_as_the_contract_says(contract, client, store):
    traffic = Traffic(store)
    operator = bearer(OPERATOR_TOKEN)
    answers = [
        client.post(
            f"/api/dead/{traffic.dead_delivery}/replay", json={"reason": "fixed"}, headers=operator
        ),
        client.post(
            f"/api/dead/{traffic.dead_delivery}/replay", json={"reason": "again"}, headers=operator
        ),
        client.post("/api/endpoints/eod@1421/pause", json={"reason": "window"}, headers=operator),
        client.post("/api/endpoints/eod@1421/resume", headers=operator),
        client.get("/api/actions", headers=operator),
        client.get("/api/messages/unknown", headers=operator),
        client.post("/api/dead/unknown/replay", json={"reason": "x"}, headers=operator),
        client.get("/api/dead?after=yesterday", headers=operator),
        client.get("/api/overview?window=hour", headers=bearer("wrong")),
        client.post("/api/endpoints/eod@1421/pause", json={"reason": "x"}, headers=bearer()),
    ]
    assert [answer.status_code for answer in answers] == [
        200,
        409,
        200,
        200,
        200,
        404,
        404,
        400,
        401,
        403,
    ]
    for answer in answers:
        # The request's body was read by the app; the response check needs only its route.
        request = MockRequest(
            "http://localhost", answer.request.method.lower(), answer.request.path
        )
        contract.validate_response(request, WerkzeugOpenAPIResponse(answer))
