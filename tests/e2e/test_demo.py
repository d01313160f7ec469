"""``hub demo`` as a newcomer runs it: separate processes, real broker, simulators on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid


def run_hub(arguments, tmp_path, timeout_s=300, **extra_env):
    env = {
        **os.environ,
        "HUB_VAR_DIR": str(tmp_path),
        "HUB_QUEUE_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}",
        **extra_env,
    }
    env.pop("HUB_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "hub", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_demo_delivers_fifty_filings_exactly_once_and_reports_json(tmp_path):
    finished = run_hub(["demo", "--documents", "50", "--offices", "4", "--json"], tmp_path)

    assert finished.returncode == 0, finished.stdout + finished.stderr
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    assert figures["submitted"] == 50
    assert figures["delivered"] == 50
    assert figures["dead_lettered"] == 0
    assert figures["duplicates_at_destination"] == 0
    assert figures["missing_at_destination"] == 0
    assert figures["exactly_once"] is True
    assert figures["offices"] == 4
    # Two filings of each service with a form (the four offices include a county), by
    # ePUAP; of the 44 general letters a fifth by e-Doręczenia.
    assert figures["filed_by_type"] == {
        "http://crd.gov.pl/wzor/2013/12/12/1410/": 44,
        "urn:hub:wzor:podatek-od-nieruchomosci:1": 2,
        "urn:hub:wzor:zezwolenie-alkoholowe:1": 2,
        "urn:hub:wzor:zajecie-pasa-drogowego:1": 2,
    }
    assert figures["delivered_by_source"] == {"epuap": 42, "edoreczenia": 8}
    assert figures["registered_by_domain_systems"] == {"tax": 2, "alkohol": 2, "drogi": 2}
    # The registers' acknowledgements came back on their .out queues and were filed.
    assert figures["register_acks_filed"] == 4
    # Purchase invoices from KSeF, mapped and booked by the finance systems over SOAP.
    assert figures["invoices_sent"] == figures["invoices_booked"] == 2
    # Each kind of filing is answered at least once: the EOD's, the tax system's and both
    # registers' decisions, each delivered with its UPD filed.
    assert figures["decisions_sent"] == figures["decisions_delivered"] == figures["upds_filed"]
    assert figures["decisions_sent"] >= 4
    assert figures["succeeded"] is True
    assert figures["docs_per_s"] > 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert (tmp_path / "demo" / "hub.db").exists()


def test_demo_runs_the_whole_region_with_every_kind_of_filing(tmp_path):
    # Every office of the sample region: 1825 endpoints, each with its queue on the broker.
    finished = run_hub(["demo", "--documents", "400", "--json"], tmp_path, timeout_s=900)

    assert finished.returncode == 0, finished.stdout + finished.stderr
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    assert figures["offices"] == 357
    assert figures["submitted"] == figures["delivered"] == 400
    assert figures["exactly_once"] is True
    # One in twenty of each service with a form, the rest general letters.
    assert figures["filed_by_type"] == {
        "http://crd.gov.pl/wzor/2013/12/12/1410/": 340,
        "urn:hub:wzor:podatek-od-nieruchomosci:1": 20,
        "urn:hub:wzor:zezwolenie-alkoholowe:1": 20,
        "urn:hub:wzor:zajecie-pasa-drogowego:1": 20,
    }
    assert figures["registered_by_domain_systems"] == {"tax": 20, "alkohol": 20, "drogi": 20}
    assert figures["register_acks_filed"] == 40
    assert figures["invoices_sent"] == figures["invoices_booked"] == 20
    assert figures["decisions_sent"] == figures["upds_filed"] >= 4
    assert figures["succeeded"] is True


def test_an_unreachable_broker_is_reported_in_one_line_with_the_fix(tmp_path):
    finished = run_hub(
        ["demo", "--documents", "1"], tmp_path, HUB_AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F"
    )

    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert lines == [
        "hub: RabbitMQ at 127.0.0.1:1 is unreachable (connection refused or closed); "
        "start it with: rabbitmq-server -detached"
    ]


def test_every_command_has_help(tmp_path):
    for command in (
        ["--help"],
        ["dead", "list", "--help"],
        ["dead", "show", "--help"],
        ["replay", "--help"],
        ["endpoint", "pause", "--help"],
        ["endpoint", "resume", "--help"],
        ["endpoint", "list", "--help"],
        ["audit", "verify", "--help"],
        ["receipts", "late", "--help"],
        ["keys", "init", "--help"],
        ["sign", "--help"],
        ["verify", "--help"],
        ["edoreczenia-subscribe", "--help"],
        ["demo", "--help"],
        ["drill", "--help"],
        ["quarantine", "list", "--help"],
        ["alerts", "--help"],
        ["dashboard-user", "--help"],
        ["worker", "--help"],
        ["relay", "--help"],
        ["poll", "--help"],
        ["serve", "--help"],
        ["db", "upgrade", "--help"],
    ):
        finished = run_hub(command, tmp_path, timeout_s=60)
        assert finished.returncode == 0, (command, finished.stderr)
        assert "Usage: " in finished.stdout


def test_db_upgrade_creates_the_store_on_sqlite(tmp_path):
    finished = run_hub(["db", "upgrade"], tmp_path, timeout_s=60)

    assert finished.returncode == 0, finished.stderr
    assert "is at revision head" in finished.stdout
    assert (tmp_path / "hub.db").exists()


def test_an_operator_lists_dead_deliveries_and_is_told_when_a_replay_has_nothing_to_do(tmp_path):
    assert run_hub(["db", "upgrade"], tmp_path, timeout_s=60).returncode == 0

    listed = run_hub(["dead", "list"], tmp_path, timeout_s=60)
    assert listed.returncode == 0
    assert listed.stdout.strip().endswith("0 dead deliveries")
    replayed = run_hub(["replay", "no-such-delivery", "--reason", "test"], tmp_path, timeout_s=60)
    assert replayed.returncode == 0
    assert "no-such-delivery: not dead" in replayed.stdout
    assert "0 deliveries replayed" in replayed.stdout
