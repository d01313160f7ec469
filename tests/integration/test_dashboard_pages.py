"""Keyset pages of the dead-letter, late-receipt and quarantine lists: API, dashboard, CLI.

Rows are added while a reader pages through: a keyset page starts after the last row the
reader saw, so every row present at the start is seen exactly once, whatever arrives.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from dashboard_support import OPERATOR_TOKEN, bearer, log_in, with_accounts
from office_traffic import WARSAW, dead_letter
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

import hub.cli
from hub.cli import cli
from hub.store.quarantine import RefusedInput, quarantine
from hub.store.repository import utcnow
from hub.store.tables import DELIVERIES
from hub.web import create_app


@pytest.fixture
def client(settings, store):
    return create_app(with_accounts(settings, store), store).test_client()


def pages(fetch):
    """Every page ``fetch(after)`` answers, following ``next`` to the end."""
    after, seen = None, []
    while True:
        answer = fetch(after)
        seen.append(answer)
        after = answer["next"]
        if after is None:
            return seen


def test_dead_letters_page_without_duplicates_or_gaps_while_more_die(client, store):
    present = {dead_letter(store, WARSAW)[1] for _ in range(7)}
    arrived = []

    def fetch(after):
        answer = client.get(
            "/api/dead", query_string={"limit": 3, "after": after or ""}, headers=bearer()
        ).json
        arrived.append(dead_letter(store, WARSAW)[1])  # dies while the reader reads
        return answer

    seen = [item["delivery_id"] for page in pages(fetch) for item in page["dead"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == present
    assert [len(page["dead"]) for page in pages(fetch)][:1] == [3]


def test_late_receipts_page_from_the_longest_overdue(client, store):
    now = utcnow()
    late = []
    for hours in range(5):
        _message, delivery_id = dead_letter(store, WARSAW)
        with store.transaction() as connection:
            connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == delivery_id)
                .values(awaited_receipt="UPD", receipt_due_at=now - timedelta(hours=hours + 1))
            )
        late.append(delivery_id)

    def fetch(after):
        return client.get(
            "/api/receipts/late", query_string={"limit": 2, "after": after or ""}, headers=bearer()
        ).json

    seen = [item["delivery_id"] for page in pages(fetch) for item in page["late"]]
    assert seen == list(reversed(late))
    log_in(client, "vera")
    html = client.get("/dashboard/receipts?limit=2").get_data(as_text=True)
    assert late[-1] in html
    assert 'rel="next"' in html


def test_the_quarantine_pages_in_the_api_and_the_dashboard(client, store):
    kept = [quarantine(store, RefusedInput("eod-intake", "bad", f"refusal {n}")) for n in range(5)]

    def fetch(after):
        answer = client.get(
            "/api/quarantine", query_string={"limit": 2, "after": after or ""}, headers=bearer()
        ).json
        quarantine(store, RefusedInput("eod-intake", "bad", "arrived meanwhile"))
        return answer

    seen = [item["id"] for page in pages(fetch) for item in page["quarantine"]]
    assert seen == list(reversed(kept))
    log_in(client, "vera")
    first = client.get("/dashboard/quarantine?limit=2").get_data(as_text=True)
    assert 'rel="next"' in first


def test_a_cursor_the_hub_never_handed_out_is_400(client):
    for path in ["/api/dead", "/api/receipts/late", "/api/quarantine"]:
        answer = client.get(path, query_string={"after": "yesterday"}, headers=bearer())
        assert answer.status_code == 400, path
        assert answer.json["type"] == "urn:hub:problem:bad-cursor"
    assert client.get("/api/dead?limit=many", headers=bearer()).status_code == 400


def run_hub(settings, *arguments):
    environment = {"HUB_DATABASE_URL": settings.database_url, "HUB_CONFIG": ""}
    result = CliRunner().invoke(cli, list(arguments), env=environment, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_the_cli_lists_pages_and_prints_the_next_cursor(settings, store):
    present = [dead_letter(store, WARSAW)[1] for _ in range(5)]
    seen, after = [], []
    while True:
        lines = run_hub(settings, "dead", "list", "--limit", "2", *after)
        seen += [line.split()[0] for line in lines if line.split()[0] in present]
        dead_letter(store, WARSAW)
        if not lines[-1].startswith("next page: --after "):
            break
        after = ["--after", lines[-1].removeprefix("next page: --after ")]
    assert seen == list(reversed(present))

    for number in range(3):
        quarantine(store, RefusedInput("eod-intake", "bad", f"refusal {number}"))
    lines = run_hub(settings, "quarantine", "list", "--limit", "2")
    assert lines[-1].startswith("next page: --after ")
    cursor = lines[-1].removeprefix("next page: --after ")
    rest = run_hub(settings, "quarantine", "list", "--limit", "2", "--after", cursor)
    assert "refusal 0" in rest[0]
    assert rest[-1] == "1 refused input(s)"


def test_replay_all_walks_the_pages_and_no_query_lists_every_id(
    settings, store, client, monkeypatch
):
    monkeypatch.setattr(hub.cli, "REPLAY_PAGE", 4)
    parked = [dead_letter(store, WARSAW)[1] for _ in range(11)]
    parameters = []

    def count_parameters(_connection, _cursor, _statement, values, _context, _many):
        parameters.append(len(values) if isinstance(values, dict | list | tuple) else 0)

    event.listen(Engine, "before_cursor_execute", count_parameters)
    try:
        listed = client.get("/api/dead?limit=500", headers=bearer(OPERATOR_TOKEN)).json
        lines = run_hub(
            settings, "replay", "--endpoint", f"eod@{WARSAW}", "--all", "--reason", "EOD fixed"
        )
    finally:
        event.remove(Engine, "before_cursor_execute", count_parameters)

    assert listed["count"] == len(parked)
    assert lines[-1] == f"{len(parked)} deliveries replayed"
    assert store.dead_deliveries() == []
    # A list of every id would bind one parameter per row.
    assert max(parameters) < len(parked)
