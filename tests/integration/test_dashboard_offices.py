"""Office-scoped dashboard accounts: Warsaw's people see and act on Warsaw's share only.

Warsaw's viewer and operator (a person with a session, and a bearer token) try to see
Radom's dead letters, replay them and pause Radom's endpoint, through the dashboard and
the JSON API. Each is refused exactly as for something that does not exist (404), or as
below their role (403), and the store is unchanged; their own office's work goes through.
"""

from __future__ import annotations

import pytest
from dashboard_support import csrf_token, register_robots
from office_traffic import RADOM, WARSAW, dead_letter, write_two_office_region
from sqlalchemy import func, select

from hub.breaker import CircuitBreakers
from hub.store.models import AuditRow, DeliveryRow
from hub.store.quarantine import RefusedInput, quarantine
from hub.web import create_app
from monitoring.alerts import AlertEvaluator
from monitoring.auth import user_entry

PASSWORDS = {"wanda": "warsaw-operator", "wiktor": "warsaw-viewer", "otto": "region-operator"}
USERS = ",".join(
    [
        user_entry("wanda", "operator", PASSWORDS["wanda"], office=WARSAW),
        user_entry("wiktor", "viewer", PASSWORDS["wiktor"], office=WARSAW),
        user_entry("otto", "operator", PASSWORDS["otto"]),
    ]
)
WARSAW_TOKEN = "warsaw-robot-token-0123456789"


@pytest.fixture
def region_path(tmp_path):
    return write_two_office_region(tmp_path / "region.toml")


@pytest.fixture
def app(settings, store):
    register_robots(store, {"warsaw-robot": ("operator", WARSAW_TOKEN)}, acts_for=WARSAW)
    accounts = settings.replace(dashboard_users=USERS, dashboard_secret_key="test-secret")
    return create_app(accounts, store)


@pytest.fixture
def letters(store):
    """Each office's dead letter: {office: (message id, delivery id)}."""
    return {WARSAW: dead_letter(store, WARSAW), RADOM: dead_letter(store, RADOM)}


def logged_in(app, name):
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"name": name, "password": PASSWORDS[name], "csrf_token": token}
    )
    assert response.status_code == 302
    return client, csrf_token(client)


def robot():
    return {"Authorization": f"Bearer {WARSAW_TOKEN}"}


def status_of(store, delivery_id):
    with store.session() as session:
        return session.get(DeliveryRow, delivery_id).status


def audit_count(store, event):
    with store.session() as session:
        return session.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.event == event)
        )


def test_an_office_account_lists_and_counts_only_its_own_office(app, letters, store):
    client, _ = logged_in(app, "wiktor")
    warsaw_delivery, radom_delivery = letters[WARSAW][1], letters[RADOM][1]

    dead = client.get("/api/dead").json
    assert [item["delivery_id"] for item in dead["dead"]] == [warsaw_delivery]
    html = client.get("/dashboard/dead").get_data(as_text=True)
    assert warsaw_delivery in html
    assert radom_delivery not in html
    assert client.get("/api/summary").json == {"messages_by_status": {"dead": 1}}
    assert client.get("/api/overview?window=day").json["overview"]["dead_now"] == 1
    endpoints = [row["endpoint"] for row in client.get("/api/endpoints").json["endpoints"]]
    assert endpoints == [f"eod@{WARSAW}"]
    assert [row["office"] for row in client.get("/api/offices").json["offices"]] == [WARSAW]
    overview = client.get("/dashboard/").get_data(as_text=True)
    assert f'data-endpoint="eod@{RADOM}"' not in overview
    assert f'data-office="{RADOM}"' not in overview

    region, _ = logged_in(app, "otto")
    assert len(region.get("/api/dead").json["dead"]) == 2


def test_another_offices_message_is_404_exactly_as_one_that_does_not_exist(app, letters):
    client, _ = logged_in(app, "wanda")
    radom_message = letters[RADOM][0]

    foreign = client.get(f"/api/messages/{radom_message}")
    missing = client.get("/api/messages/00000000-0000-0000-0000-000000000000")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json["type"] == missing.json["type"] == "urn:hub:problem:not-found"
    assert client.get(f"/dashboard/messages/{radom_message}").status_code == 404
    assert client.get("/api/search", query_string={"q": radom_message}).json["results"] == []
    own = client.get(f"/api/messages/{letters[WARSAW][0]}")
    assert own.status_code == 200


@pytest.mark.parametrize("who", ["wanda", "warsaw-robot"])
def test_an_office_operator_cannot_replay_or_pause_another_offices_and_nothing_changes(
    app, letters, store, settings, who
):
    if who == "wanda":
        client, token = logged_in(app, "wanda")
        headers = {"X-CSRFToken": token}
    else:
        client, token, headers = app.test_client(), "", robot()
    radom_delivery = letters[RADOM][1]

    answers = [
        client.post(
            f"/api/dead/{radom_delivery}/replay", json={"reason": "mine now"}, headers=headers
        ),
        client.post(
            f"/api/endpoints/eod@{RADOM}/pause", json={"reason": "mine now"}, headers=headers
        ),
        client.post(f"/api/endpoints/eod@{RADOM}/resume", headers=headers),
    ]
    if who == "wanda":
        answers += [
            client.post(
                f"/dashboard/dead/{radom_delivery}/replay",
                data={"csrf_token": token, "reason": "mine now"},
            ),
            client.post(
                f"/dashboard/endpoints/eod@{RADOM}/pause",
                data={"csrf_token": token, "reason": "mine now"},
            ),
            client.post(f"/dashboard/endpoints/eod@{RADOM}/resume", data={"csrf_token": token}),
        ]
    assert [answer.status_code for answer in answers] == [404] * len(answers)
    unknown = client.post(
        "/api/dead/no-such-delivery/replay", json={"reason": "x"}, headers=headers
    )
    assert answers[0].json["type"] == unknown.json["type"] == "urn:hub:problem:not-found"

    assert status_of(store, radom_delivery) == "dead"
    assert CircuitBreakers(store, settings).states() == []
    assert audit_count(store, "replayed") == 0
    assert audit_count(store, "endpoint-paused") == 0


def test_an_office_operator_replays_and_pauses_its_own_and_sees_only_its_own_actions(
    app, letters, store, settings
):
    region, region_token = logged_in(app, "otto")
    region.post(
        f"/api/endpoints/eod@{RADOM}/pause",
        json={"reason": "Radom's upgrade"},
        headers={"X-CSRFToken": region_token},
    )
    client, token = logged_in(app, "wanda")

    replayed = client.post(
        f"/api/dead/{letters[WARSAW][1]}/replay",
        json={"reason": "EOD fixed"},
        headers={"X-CSRFToken": token},
    )
    assert replayed.status_code == 200
    assert status_of(store, letters[WARSAW][1]) == "pending"
    paused = client.post(
        f"/dashboard/endpoints/eod@{WARSAW}/pause", data={"csrf_token": token, "reason": "night"}
    )
    assert paused.status_code == 302
    states = {row.endpoint: row.state for row in CircuitBreakers(store, settings).states()}
    assert states == {f"eod@{WARSAW}": "paused", f"eod@{RADOM}": "paused"}

    actions = client.get("/api/actions").json["actions"]
    assert {(action["event"], action["details"]["actor"]) for action in actions} == {
        ("replayed", "wanda"),
        ("endpoint-paused", "wanda"),
    }
    assert "Radom's upgrade" not in client.get("/dashboard/actions").get_data(as_text=True)
    assert len(region.get("/api/actions").json["actions"]) == 3


def test_an_office_viewer_may_not_act_even_on_its_own_office(app, letters, store):
    client, token = logged_in(app, "wiktor")
    refused = client.post(
        f"/api/dead/{letters[WARSAW][1]}/replay",
        json={"reason": "try"},
        headers={"X-CSRFToken": token},
    )
    assert refused.status_code == 403
    assert status_of(store, letters[WARSAW][1]) == "dead"


def test_an_office_account_sees_its_own_alerts_and_no_quarantine(app, letters, store, settings):
    AlertEvaluator(store, settings, None).evaluate()
    quarantine(store, RefusedInput("eod-intake", "wrong-office", "claimed another office"))
    client, _ = logged_in(app, "wanda")

    subjects = {alert["subject"] for alert in client.get("/api/alerts").json["alerts"]}
    assert subjects == {f"eod@{WARSAW}"}
    refused = client.get("/api/quarantine")
    assert refused.status_code == 403
    assert refused.json["type"] == "urn:hub:problem:region-only"
    assert client.get("/dashboard/quarantine").status_code == 403

    region, _ = logged_in(app, "otto")
    assert region.get("/api/quarantine").json["count"] == 1
    assert {alert["subject"] for alert in region.get("/api/alerts").json["alerts"]} == {
        f"eod@{WARSAW}",
        f"eod@{RADOM}",
    }


def test_an_office_account_sees_none_of_the_queues_every_office_shares(app, letters, hub):
    # Every queue carries every office's documents: its depth would tell one office about
    # the others' traffic. The office's own backlog is in /api/endpoints.
    client, _ = logged_in(app, "wiktor")
    assert client.get("/api/queues").json["queues"] == []
