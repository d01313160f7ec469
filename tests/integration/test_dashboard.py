"""The dashboard and its JSON API over a real store, through Flask's test client.

The store is filled through its own methods (accept, route, claim, complete, fail), so
the pages show what the workers would have written.
"""

from __future__ import annotations

import re

import pytest
from dashboard_support import (
    OPERATOR_TOKEN,
    Traffic,
    bearer,
    csrf_token,
    log_in,
    with_accounts,
)
from sqlalchemy import select

from hub.breaker import CircuitBreakers
from hub.store.models import AuditRow, DeliveryRow
from hub.web import create_app


@pytest.fixture
def traffic(store):
    return Traffic(store)


@pytest.fixture
def app(settings, store):
    return create_app(with_accounts(settings, store), store)


@pytest.fixture
def client(app):
    return app.test_client()


def page(response):
    return response.get_data(as_text=True)


def delivery_status(store, delivery_id):
    with store.session() as session:
        return session.get(DeliveryRow, delivery_id).status


def audit_events(store, event):
    with store.session() as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.event == event)))


# ---- access ------------------------------------------------------------------------


def test_pages_send_a_stranger_to_the_login_page_and_the_api_answers_401(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")

    for path in ["/api/overview", "/api/summary", "/api/dead", "/api/endpoints", "/api/alerts"]:
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert answer.mimetype == "application/problem+json"
        assert answer.json["type"] == "urn:hub:problem:unauthenticated"


def test_machines_routes_stay_open(client, traffic):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


def test_a_wrong_password_is_refused_and_a_right_one_opens_the_overview(client):
    token = csrf_token(client)
    refused = client.post("/login", data={"name": "vera", "password": "no", "csrf_token": token})
    assert refused.status_code == 401
    assert "Nieprawidłowa nazwa lub hasło" in page(refused)

    unknown = client.post("/login", data={"name": "eve", "password": "x", "csrf_token": token})
    assert unknown.status_code == 401

    log_in(client, "vera")
    overview = client.get("/dashboard/")
    assert overview.status_code == 200
    assert "vera" in page(overview)


def test_a_login_without_its_csrf_token_is_refused(client):
    response = client.post("/login", data={"name": "vera", "password": "viewer-pass"})
    assert response.status_code == 400
    assert client.get("/dashboard/").status_code == 302


def test_login_goes_back_only_to_a_page_of_this_site(client):
    token = csrf_token(client)
    response = client.post(
        "/login?next=https://evil.example/phish",
        data={"name": "vera", "password": "viewer-pass", "csrf_token": token},
    )
    assert response.headers["Location"] == "/dashboard/"
    token = csrf_token(client)
    response = client.post(
        "/login?next=/dashboard/dead",
        data={"name": "vera", "password": "viewer-pass", "csrf_token": token},
    )
    assert response.headers["Location"] == "/dashboard/dead"


def test_logout_ends_the_session(client):
    token = log_in(client, "vera")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_a_wrong_bearer_token_is_401(client):
    response = client.get("/api/overview", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# ---- overview ----------------------------------------------------------------------


def test_overview_shows_the_counts_tables_charts_and_queues(client, traffic, hub):
    log_in(client, "vera")
    html = page(client.get("/dashboard/"))

    figures = dict(re.findall(r'data-figure="(\w+)">(\d+)<', html))
    assert figures == {
        "received": "3",
        "delivered": "1",
        "retrying": "1",
        "dead": "1",
        "rejected": "0",
        "waiting": "1",
    }
    assert 'data-endpoint="eod@1421"' in html
    assert 'data-endpoint="eod@146501_1"' in html
    assert 'data-office="1421"' in html
    assert "Starostwo Powiatowe w Pruszkowie" in html
    assert 'id="series"' in html
    assert "uPlot.iife.min.js" in html
    assert hub.topology.delivery_queue("eod@1421") in html
    assert client.get("/dashboard/static/uPlot.iife.min.js").status_code == 200


def test_overview_api_counts_the_window_and_draws_the_series(client, traffic):
    answer = client.get("/api/overview?window=day", headers=bearer()).json
    assert answer["overview"]["received"] == 3
    assert answer["overview"]["delivered"] == 1
    assert answer["overview"]["dead"] == 1
    assert answer["overview"]["retrying_now"] == 1
    assert sum(point["received"] for point in answer["series"]) == 3
    delivered = [point for point in answer["series"] if point["delivered"]]
    assert len(delivered) == 1
    assert delivered[0]["p50_ms"] is not None
    assert client.get("/api/overview?window=week", headers=bearer()).status_code == 400


def test_endpoints_sort_by_backlog_error_rate_and_oldest_waiting(client, traffic):
    def order(sort):
        rows = client.get(f"/api/endpoints?sort={sort}", headers=bearer()).json["endpoints"]
        return [row["endpoint"] for row in rows]

    assert order("backlog")[0] == "eod@1421"
    assert order("error_rate")[0] == "eod@1421"
    assert order("oldest")[0] == "eod@1421"
    rows = {
        row["endpoint"]: row
        for row in client.get("/api/endpoints", headers=bearer()).json["endpoints"]
    }
    assert rows["eod@1421"]["backlog"] == 1
    assert rows["eod@1421"]["dead_now"] == 1
    assert rows["eod@1421"]["error_rate"] == 1.0
    assert rows["eod@1421"]["last_error"].startswith("TransientDeliveryError: timeout")
    assert rows["eod@146501_1"]["last_success_at"] is not None
    assert rows["eod@146501_1"]["circuit"] == "closed"


def test_offices_add_up_their_endpoints(client, traffic):
    rows = {
        row["office"]: row
        for row in client.get("/api/offices?sort=backlog", headers=bearer()).json["offices"]
    }
    assert rows["1421"]["received"] == 2
    assert rows["1421"]["backlog"] == 1
    assert rows["146501_1"]["delivered"] == 1
    assert rows["146501_1"]["name"] == "Urząd m.st. Warszawy"


def test_queue_depths_come_from_rabbitmq(client, hub):
    queues = client.get("/api/queues", headers=bearer()).json["queues"]
    by_name = {queue["queue"]: queue for queue in queues}
    assert by_name[hub.topology.delivery_queue("eod@1421")]["messages"] == 0
    assert by_name[hub.topology.dead_letter_queue]["kind"] == "dead"


def test_queue_depths_answer_503_when_the_broker_is_down(settings, store):
    down = settings.replace(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F")
    client = create_app(with_accounts(down, store), store).test_client()
    response = client.get("/api/queues", headers=bearer())
    assert response.status_code == 503
    assert response.json["type"] == "urn:hub:problem:broker-unavailable"
    log_in(client, "vera")
    assert "RabbitMQ nieosiągalny" in page(client.get("/dashboard/"))


# ---- trace -------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["envelope", "case", "epuap:/umwarszawa/skrytka:2026:abc"])
def test_search_finds_a_message_by_envelope_case_or_epuap_id(client, traffic, store, query):
    trace = client.get(f"/api/messages/{traffic.delivered}", headers=bearer()).json
    text = {"envelope": traffic.delivered, "case": trace["correlation_id"]}.get(query, query)
    results = client.get("/api/search", query_string={"q": text}, headers=bearer()).json
    assert [item["envelope_id"] for item in results["results"]] == [traffic.delivered]

    log_in(client, "vera")
    response = client.get("/dashboard/trace", query_string={"q": text})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/dashboard/messages/{traffic.delivered}")


def test_only_those_who_see_personal_data_search_by_part_of_an_id_or_free_text(client, traffic):
    # A part of the ePUAP id names the citizen's mailbox; headers hold names and addresses.
    for text in ["umwarszawa/skrytka:2026", "skrytka", "AE:PL-1"]:
        viewer = client.get("/api/search", query_string={"q": text}, headers=bearer()).json
        assert viewer["results"] == [], text
    operator = client.get(
        "/api/search", query_string={"q": "umwarszawa/skrytka:2026"}, headers=bearer(OPERATOR_TOKEN)
    ).json
    assert [item["envelope_id"] for item in operator["results"]] == [traffic.delivered]


def test_search_finds_an_e_doreczenia_message_by_its_id_in_the_headers(client, traffic):
    results = client.get("/api/search?q=EDOR-77", headers=bearer()).json["results"]
    assert [item["envelope_id"] for item in results] == [traffic.dead]


def test_a_search_that_matches_nothing_says_so(client, traffic):
    log_in(client, "vera")
    html = page(client.get("/dashboard/trace?q=no-such-thing"))
    assert "Nic nie znaleziono" in html


def test_trace_shows_hops_attempts_signatures_receipts_and_audit(client, traffic, store):
    log_in(client, "otto")
    html = page(client.get(f"/dashboard/messages/{traffic.delivered}"))
    for fragment in [
        'id="hops"',
        "eod@146501_1 #1: delivered",
        "146501_1/KW/0000001/2026",
        'id="signatures"',
        "#1234",
        'id="receipts"',
        "UPP-1",
        'id="audit"',
        "routed",
        "signature-checked",
    ]:
        assert fragment in html, fragment

    dead = client.get(f"/api/messages/{traffic.dead}", headers=bearer(OPERATOR_TOKEN)).json
    [delivery] = dead["deliveries"]
    assert [attempt["outcome"] for attempt in delivery["attempts"]] == ["retry", "dead"]
    assert delivery["attempts"][0]["error"] == "EOD answered 503"
    assert delivery["attempts"][1]["duration_ms"] is not None
    assert [hop["what"] for hop in dead["hops"]][:2] == ["accepted", "routed"]
    assert {"accepted", "routed", "dead"} <= {entry["event"] for entry in dead["audit"]}


def test_a_viewer_sees_personal_data_masked_and_an_operator_sees_it(app, traffic):
    viewer = app.test_client()
    log_in(viewer, "vera")
    html = page(viewer.get(f"/dashboard/messages/{traffic.dead}"))
    assert traffic.pesel not in html
    assert traffic.surname not in html
    assert "•" * 11 in html
    assert "/obywatel/skrytka" not in page(viewer.get(f"/dashboard/messages/{traffic.retrying}"))
    assert traffic.pesel not in page(viewer.get("/dashboard/dead"))
    api = viewer.get(f"/api/messages/{traffic.delivered}").json
    assert api["personal_data_masked"] is True
    assert api["body_preview"] is None
    assert traffic.surname not in api["signature_checks"][0]["signer"]

    operator = app.test_client()
    log_in(operator, "otto")
    html = page(operator.get(f"/dashboard/messages/{traffic.dead}"))
    assert traffic.pesel in html
    assert traffic.surname in html


def test_an_unknown_message_page_is_404(client):
    log_in(client, "vera")
    assert client.get("/dashboard/messages/nope").status_code == 404


# ---- act ---------------------------------------------------------------------------


def test_a_viewer_can_neither_replay_nor_pause(app, traffic, store):
    client = app.test_client()
    token = log_in(client, "vera")
    html = page(client.get("/dashboard/dead"))
    assert traffic.dead_delivery in html
    assert "/replay" not in html

    refused = client.post(
        f"/dashboard/dead/{traffic.dead_delivery}/replay",
        data={"csrf_token": token, "reason": "try"},
    )
    assert refused.status_code == 403
    refused = client.post(
        "/dashboard/endpoints/eod@1421/pause", data={"csrf_token": token, "reason": "x"}
    )
    assert refused.status_code == 403
    api = client.post(
        f"/api/dead/{traffic.dead_delivery}/replay",
        json={"reason": "try"},
        headers={"X-CSRFToken": token},
    )
    assert api.status_code == 403
    assert (
        client.post(
            "/api/endpoints/eod@1421/pause", json={"reason": "x"}, headers=bearer()
        ).status_code
        == 403
    )
    assert delivery_status(store, traffic.dead_delivery) == "dead"
    assert CircuitBreakers(store, app.config["HUB_SETTINGS"]).states() == []


def test_an_operator_replays_a_dead_letter_once_and_the_audit_log_names_them(app, traffic, store):
    client = app.test_client()
    token = log_in(client, "otto")
    html = page(client.get("/dashboard/dead"))
    assert f"/dashboard/dead/{traffic.dead_delivery}/replay" in html

    response = client.post(
        f"/dashboard/dead/{traffic.dead_delivery}/replay",
        data={"csrf_token": token, "reason": "EOD fixed the PESEL check"},
    )
    assert response.status_code == 302
    assert delivery_status(store, traffic.dead_delivery) == "pending"
    [replayed] = audit_events(store, "replayed")
    assert '"actor": "otto"' in replayed.details
    assert "EOD fixed the PESEL check" in replayed.details
    assert "Ponowiono" in page(client.get("/dashboard/dead"))

    again = client.post(
        f"/dashboard/dead/{traffic.dead_delivery}/replay",
        data={"csrf_token": token, "reason": "twice"},
    )
    assert again.status_code == 302
    assert len(audit_events(store, "replayed")) == 1
    actions = page(client.get("/dashboard/actions"))
    assert "replayed" in actions
    assert "otto" in actions


def test_a_replay_without_its_csrf_token_is_refused(app, traffic, store):
    client = app.test_client()
    log_in(client, "otto")
    response = client.post(
        f"/dashboard/dead/{traffic.dead_delivery}/replay", data={"reason": "no token"}
    )
    assert response.status_code == 400
    api = client.post(f"/api/dead/{traffic.dead_delivery}/replay", json={"reason": "no token"})
    assert api.status_code == 400
    assert api.json["type"] == "urn:hub:problem:csrf-refused"
    assert delivery_status(store, traffic.dead_delivery) == "dead"


def test_an_operator_pauses_and_resumes_an_endpoint_and_both_are_audited(app, traffic, store):
    client = app.test_client()
    token = log_in(client, "otto")
    breakers = CircuitBreakers(store, app.config["HUB_SETTINGS"])

    client.post(
        "/dashboard/endpoints/eod@1421/pause",
        data={"csrf_token": token, "reason": "EOD upgrade tonight"},
    )
    [state] = breakers.states()
    assert (state.state, state.changed_by, state.reason) == (
        "paused",
        "otto",
        "EOD upgrade tonight",
    )
    assert "paused" in page(client.get("/dashboard/"))

    client.post("/dashboard/endpoints/eod@1421/resume", data={"csrf_token": token})
    [state] = breakers.states()
    assert state.state == "closed"
    [paused] = audit_events(store, "endpoint-paused")
    [resumed] = audit_events(store, "endpoint-resumed")
    assert '"actor": "otto"' in paused.details
    assert '"endpoint": "eod@1421"' in resumed.details
    assert "endpoint-paused" in page(client.get("/dashboard/actions"))


def test_the_api_acts_with_a_session_and_its_csrf_header_or_an_operator_token(app, traffic, store):
    client = app.test_client()
    token = log_in(client, "otto")
    paused = client.post(
        "/api/endpoints/eod@1421/pause", json={"reason": "window"}, headers={"X-CSRFToken": token}
    )
    assert paused.json == {"endpoint": "eod@1421", "circuit": "paused"}

    robot = app.test_client()
    resumed = robot.post("/api/endpoints/eod@1421/resume", headers=bearer(OPERATOR_TOKEN))
    assert resumed.json == {"endpoint": "eod@1421", "circuit": "closed"}

    no_reason = robot.post(
        f"/api/dead/{traffic.dead_delivery}/replay", json={}, headers=bearer(OPERATOR_TOKEN)
    )
    assert no_reason.status_code == 400
    assert no_reason.json["type"] == "urn:hub:problem:reason-required"
    replayed = robot.post(
        f"/api/dead/{traffic.dead_delivery}/replay",
        json={"reason": "fixed"},
        headers=bearer(OPERATOR_TOKEN),
    )
    assert replayed.json["replayed"] is True
    assert replayed.json["message_id"] == traffic.dead
    again = robot.post(
        f"/api/dead/{traffic.dead_delivery}/replay",
        json={"reason": "fixed"},
        headers=bearer(OPERATOR_TOKEN),
    )
    assert again.status_code == 409
    actors = {
        action["details"]["actor"]
        for action in robot.get("/api/actions", headers=bearer(OPERATOR_TOKEN)).json["actions"]
    }
    assert actors == {"otto", "robot"}


def test_dead_letters_api_lists_them_with_their_errors(client, traffic):
    answer = client.get("/api/dead?endpoint=eod@1421", headers=bearer()).json
    assert answer["count"] == 1
    [item] = answer["dead"]
    assert item["delivery_id"] == traffic.dead_delivery
    assert traffic.pesel not in item["last_error"]
    assert client.get("/api/dead?endpoint=eod@146501_1", headers=bearer()).json["count"] == 0


# ---- language ----------------------------------------------------------------------


def test_labels_are_polish_by_default_and_english_on_request(client, traffic):
    log_in(client, "vera")
    assert "Martwe przesyłki" in page(client.get("/dashboard/"))
    assert "Dead letters" in page(client.get("/dashboard/?lang=en"))
    # The choice is kept for the session.
    assert "Dead letters" in page(client.get("/dashboard/dead"))


def test_the_browser_language_is_honoured(app):
    client = app.test_client()
    html = page(client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert "Log in" in html
    assert "Zaloguj" in page(app.test_client().get("/login"))
