"""Alert rules against a real store, the webhook told once per alert, and the metrics they share."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from dashboard_support import bearer, log_in, with_accounts
from flask import Flask, request
from prometheus_client.parser import text_string_to_metric_families
from support import serve_in_thread

from hub.breaker import CircuitBreakers
from hub.cli import cli
from hub.envelope import Address, Envelope
from hub.errors import PermanentDeliveryError
from hub.region import load_region
from hub.store.repository import AwaitedReceipt, PlannedDelivery, utcnow
from hub.web import create_app
from monitoring.alerts import AlertEvaluator, alert_log


class Webhook:
    """A chat webhook on loopback that keeps what it was sent, and can refuse."""

    def __init__(self):
        self.received = []
        self.refuse = False
        self._lock = threading.Lock()
        app = Flask("webhook")

        @app.post("/hook")
        def hook():
            if self.refuse:
                return "down", 503
            with self._lock:
                self.received.append(request.get_json())
            return "", 204

        self.simulator = serve_in_thread(app)
        self.url = f"{self.simulator.url}/hook"


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.simulator.stop()


@pytest.fixture
def evaluator(settings, store, webhook):
    alerting = settings.replace(alert_webhook_url=webhook.url)
    return AlertEvaluator(store, alerting, load_region(settings.region_path))


def accept_and_route(store, office="1421", endpoint="eod@1421"):
    envelope = Envelope(
        document_type="t", source="epuap", destination=Address(office), body=b"<a/>"
    )
    store.accept(envelope)
    [ticket] = store.record_routing(str(envelope.envelope_id), [PlannedDelivery(endpoint, "r")])
    return ticket.delivery_id


def kill(store, delivery_id):
    claim = store.claim_delivery(delivery_id, "w", 60)
    store.fail_delivery(
        delivery_id, claim, PermanentDeliveryError("400"), give_up=True, next_attempt_at=None
    )


def rules(evaluator, now=None):
    return {(item.rule, item.subject) for item in evaluator.findings(now or utcnow())}


def test_a_dead_letter_fires_once_is_posted_once_and_resolves_after_its_replay(
    evaluator, store, webhook
):
    delivery_id = accept_and_route(store)
    kill(store, delivery_id)

    first = evaluator.evaluate()
    assert first.fired == ["1 delivery to eod@1421 died in the last 15 min"]
    assert first.posted == 1
    second = evaluator.evaluate()
    assert second.fired == []
    assert second.posted == 0
    assert [(item["status"], item["rule"], item["subject"]) for item in webhook.received] == [
        ("firing", "dead-letters", "eod@1421")
    ]
    assert "eod@1421" in webhook.received[0]["text"]

    store.replay_delivery(delivery_id, "otto", "fixed")
    resolved = evaluator.evaluate()
    assert resolved.resolved == ["1 delivery to eod@1421 died in the last 15 min"]
    evaluator.evaluate()
    assert [item["status"] for item in webhook.received] == ["firing", "resolved"]
    [logged] = alert_log(store)
    assert logged["state"] == "resolved"
    assert logged["notified_at"] is not None
    assert logged["resolved_notified_at"] is not None


def test_a_webhook_that_refuses_is_tried_again_next_cycle(evaluator, store, webhook):
    kill(store, accept_and_route(store))
    webhook.refuse = True
    assert evaluator.evaluate().posted == 0
    assert alert_log(store)[0]["notified_at"] is None
    webhook.refuse = False
    assert evaluator.evaluate().posted == 1
    assert evaluator.evaluate().posted == 0
    assert len(webhook.received) == 1


def test_an_open_circuit_fires_only_after_it_stayed_open_long_enough(evaluator, store, settings):
    breakers = CircuitBreakers(store, settings)
    for _ in range(settings.breaker_failure_threshold):
        breakers.failed("eod@1421", "503")
    assert ("circuit-open", "eod@1421") in rules(evaluator)

    now = utcnow()
    assert evaluator.evaluate(now).fired == []
    assert alert_log(store)[0]["state"] == "pending"
    later = now + timedelta(seconds=settings.alert_open_circuit_s + 1)
    [fired] = evaluator.evaluate(later).fired
    assert fired.startswith("eod@1421's circuit has been open")
    assert alert_log(store)[0]["state"] == "firing"

    breakers.resume("eod@1421", "otto")
    assert evaluator.evaluate(later).resolved == [fired]


def test_a_paused_endpoint_is_not_an_alert(evaluator, store, settings):
    CircuitBreakers(store, settings).pause("eod@1421", "otto", "maintenance")
    assert rules(evaluator) == set()


def test_late_receipts_fire_per_endpoint(evaluator, store):
    delivery_id = accept_and_route(store, "146501_1", "eod@146501_1")
    claim = store.claim_delivery(delivery_id, "w", 60)
    store.complete_delivery(
        delivery_id, claim, "ref", awaited=AwaitedReceipt("UPD", utcnow() - timedelta(hours=1))
    )
    assert rules(evaluator) == {("receipts-late", "eod@146501_1")}


def test_a_backlog_older_than_allowed_fires_with_the_endpoints_own_limit(
    evaluator, store, settings
):
    accept_and_route(store, "1421", "eod@1421")
    accept_and_route(store, "146501_1", "eod@146501_1")
    assert rules(evaluator) == set()

    in_ninety_minutes = utcnow() + timedelta(minutes=90)
    assert rules(evaluator, in_ninety_minutes) == {
        ("backlog-age", "eod@1421"),
        ("backlog-age", "eod@146501_1"),
    }
    region = load_region(settings.region_path)
    patient = dataclasses.replace(
        region.endpoints["eod@1421"], options={"max_backlog_age_s": 4 * 3600}
    )
    region = dataclasses.replace(region, endpoints={**region.endpoints, "eod@1421": patient})
    own_limits = AlertEvaluator(store, settings, region)
    assert rules(own_limits, in_ninety_minutes) == {("backlog-age", "eod@146501_1")}


def test_hub_alerts_once_evaluates_and_prints(settings, store, monkeypatch):
    kill(store, accept_and_route(store))
    for name, value in {
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_REGION_PATH": str(settings.region_path),
        "HUB_VAR_DIR": str(settings.var_dir),
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["alerts", "--once"])
    assert result.exit_code == 0, result.output
    assert "fired: 1 delivery to eod@1421 died in the last 15 min" in result.output
    assert "1 alert(s) ongoing, 0 posted" in result.output


def test_the_alerts_api_and_page_show_the_log(settings, store, evaluator):
    kill(store, accept_and_route(store))
    evaluator.evaluate()
    app = create_app(with_accounts(settings, store), store)
    client = app.test_client()
    [alert] = client.get("/api/alerts", headers=bearer()).json["alerts"]
    assert (alert["rule"], alert["state"]) == ("dead-letters", "firing")
    log_in(client, "vera")
    assert "dead-letters" in client.get("/dashboard/alerts").get_data(as_text=True)


def samples_of(text):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_per_endpoint_and_office_parse_as_prometheus_text(settings, store, hub):
    delivered = accept_and_route(store, "146501_1", "eod@146501_1")
    store.complete_delivery(delivered, store.claim_delivery(delivered, "w", 60), "R1")
    kill(store, accept_and_route(store))
    accept_and_route(store)

    text = create_app(settings, store).test_client().get("/metrics").get_data(as_text=True)
    samples = samples_of(text)
    warsaw = (("endpoint", "eod@146501_1"), ("office", "146501_1"))
    pruszkow = (("endpoint", "eod@1421"), ("office", "1421"))
    assert samples[("hub_endpoint_delivered_total", warsaw)] == 1
    assert samples[("hub_endpoint_failed_attempts_total", pruszkow)] == 1
    assert samples[("hub_endpoint_retries_total", pruszkow)] == 0
    assert samples[("hub_endpoint_dead", pruszkow)] == 1
    assert samples[("hub_endpoint_backlog", pruszkow)] == 1
    assert samples[("hub_endpoint_oldest_waiting_seconds", pruszkow)] >= 0
    assert samples[("hub_attempt_duration_seconds_count", warsaw)] == 1
    inf_bucket = tuple(sorted((*warsaw, ("le", "+Inf"))))
    assert samples[("hub_attempt_duration_seconds_bucket", inf_bucket)] == 1
    assert samples[("hub_broker_up", ())] == 1
    # The queues are shared by every endpoint: a constant set, labelled by queue and kind.
    queue = hub.topology.delivery_queue("eod@1421")
    assert samples[("hub_queue_messages", (("kind", "delivery"), ("queue", queue)))] == 0
    queue_samples = [labels for name, labels in samples if name == "hub_queue_messages"]
    assert len(queue_samples) == len(hub.topology.queues)


def test_metrics_say_when_the_broker_is_down(settings, store):
    down = settings.replace(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F")
    text = create_app(down, store).test_client().get("/metrics").get_data(as_text=True)
    assert samples_of(text)[("hub_broker_up", ())] == 0
