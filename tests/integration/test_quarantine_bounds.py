"""The quarantine is bounded: what a refusal keeps, each door's body limit, and pruning.

Requests go to the hub's real Flask app over the real store (SQLite and PostgreSQL);
``hub quarantine prune`` runs as the CLI. What is kept is read back from the table and
checked against digests computed here.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flask import request
from sqlalchemy import select, update

from hub.cli import cli
from hub.identity import ClientRegistry
from hub.signing.keystore import init_test_pki
from hub.store.quarantine import RefusedInput, quarantine, quarantined
from hub.store.tables import AUDIT, QUARANTINE
from hub.web import create_app, refuse

TOKEN = "intake-token"
WEBHOOK_SECRET = "webhook-secret"
EDORECZENIA_ADDRESS = "AE:PL-14650-11001-HUBDM-02"
# A body well over the 4 KiB a stranger may leave, and under every door's limit it meets.
BODY = b"<w:Dokument xmlns:w='urn:x'>" + bytes(range(256)) * 200 + b"</w:Dokument>"


@pytest.fixture
def region_path(region_path):
    with region_path.open("a", encoding="utf-8") as region:
        region.write(
            '\n[[inbound]]\nname = "edoreczenia"\nkind = "edoreczenia-poll"\n'
            'url = "http://127.0.0.1:9/api/v1"\ntoken_url = "http://127.0.0.1:9/oauth2/token"\n'
            'client_id = "hub"\nclient_secret = "s"\nwebhook = true\n'
        )
    text = region_path.read_text(encoding="utf-8")
    text = text.replace(
        'esp = "/umwarszawa/skrytka"\n',
        f'esp = "/umwarszawa/skrytka"\nedoreczenia = "{EDORECZENIA_ADDRESS}"\n',
    )
    region_path.write_text(text, encoding="utf-8")
    return region_path


@pytest.fixture
def settings(settings):
    # The webhook keeps evidences signed by the provider's pinned certificate only.
    init_test_pki(
        settings.keys,
        settings.trust,
        ["146501_1", "edoreczenia"],
        platforms_dir=settings.var_dir / "platforms",
    )
    return settings


@pytest.fixture
def client(settings, store):
    registry = ClientRegistry(store)
    registry.add("eod-146501_1", "146501_1", sources=["eod"], token=TOKEN)
    registry.add("edoreczenia", "region", apis=["edoreczenia-webhook"], token=WEBHOOK_SECRET)
    return create_app(settings, store).test_client()


class UnreadableBody(io.RawIOBase):
    """A body of ``size`` bytes (as its Content-Length says) that fails the test if read."""

    def __init__(self, size):
        super().__init__()
        self.size = size
        self.position = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        self.position = self.size if whence == io.SEEK_END else offset
        return self.position

    def tell(self):
        return self.position

    def readinto(self, _buffer):
        raise AssertionError("the body was read")


def kept_rows(store):
    with store.reading() as connection:
        return connection.execute(select(QUARANTINE).order_by(QUARANTINE.c.id)).mappings().all()


def intake_headers(token):
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/xml",
        "X-Hub-Office": "146501_1",
    }


def test_an_unauthenticated_refusal_keeps_only_digest_size_address_and_the_first_4_kib(
    client, store
):
    response = client.post(
        "/api/documents",
        data=BODY,
        headers=intake_headers("wrong-token"),
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )

    assert response.status_code == 401
    [row] = kept_rows(store)
    assert row["code"] == "unauthorized"
    assert row["body"] == BODY[:4096]
    assert row["size"] == len(BODY)
    assert row["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert row["truncated"]
    assert row["remote_address"] == "203.0.113.7"


def test_a_refusal_of_a_known_caller_keeps_what_it_sent(client, store):
    # A valid token, but no Idempotency-Key: the caller is known, its mistake kept whole.
    response = client.post("/api/documents", data=BODY, headers=intake_headers(TOKEN))

    assert response.status_code == 400
    [row] = kept_rows(store)
    assert row["code"] == "missing-header"
    assert row["body"] == BODY
    assert row["size"] == len(BODY)
    assert not row["truncated"]


def test_an_unauthenticated_refusal_after_the_body_was_read_keeps_the_same_sample(store, settings):
    app = create_app(settings, store)

    @app.post("/test/read-then-refuse")
    def read_then_refuse():
        assert request.get_data() == BODY  # as a door that checks a signature first
        return refuse("test", 401, "unauthorized", "no credential")

    response = app.test_client().post("/test/read-then-refuse", data=BODY)

    assert response.status_code == 401
    [row] = kept_rows(store)
    assert (row["body"], row["size"]) == (BODY[:4096], len(BODY))
    assert row["sha256"] == hashlib.sha256(BODY).hexdigest()


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/cases/some-case/status", 64 * 1024),
        (f"/edoreczenia/notifications/146501_1?token={WEBHOOK_SECRET}", 64 * 1024),
        ("/dashboard/login", 64 * 1024),
        ("/api/documents", 64 * 1024 * 1024),
        ("/epuap/esp", 32 * 1024 * 1024),
    ],
)
def test_a_body_over_its_doors_limit_is_refused_413_before_it_is_read_and_kept_without_it(
    client, store, path, limit
):
    response = client.post(
        path,
        input_stream=UnreadableBody(limit + 1),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json["type"] == "urn:hub:problem:too-large"
    assert str(limit) in response.json["detail"]
    [row] = kept_rows(store)
    assert (row["code"], row["size"], row["body"]) == ("too-large", 0, b"")


def test_a_chunked_body_is_stopped_at_its_doors_limit(client, store):
    response = client.post(
        "/api/cases/some-case/status",
        input_stream=io.BytesIO(b"{" + b" " * (64 * 1024) + b"}"),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 413
    assert [row["code"] for row in kept_rows(store)] == ["too-large"]


def test_a_small_body_passes_the_case_apis_limit_to_its_credential_check(client, store):
    case = client.post(
        "/api/cases/some-case/status",
        data=json.dumps({"status": "registered"}),
        headers={"Content-Type": "application/json"},
    )

    assert case.status_code == 401
    assert [row["code"] for row in kept_rows(store)] == ["unauthorized"]


def refused_at(store, received_at, count):
    for _ in range(count):
        row_id = quarantine(store, RefusedInput("test", "unauthorized", "no credential", b"x"))
        with store.transaction() as connection:
            connection.execute(
                update(QUARANTINE).where(QUARANTINE.c.id == row_id).values(received_at=received_at)
            )


def prune_events(store):
    with store.reading() as connection:
        rows = connection.execute(
            select(AUDIT.c.message_id, AUDIT.c.details)
            .where(AUDIT.c.event == "quarantine_pruned")
            .order_by(AUDIT.c.id)
        ).all()
    return [(message_id, json.loads(details)) for message_id, details in rows]


def run_cli(settings, *arguments):
    return CliRunner().invoke(
        cli, arguments, env={"HUB_DATABASE_URL": settings.database_url}, catch_exceptions=False
    )


def test_prune_removes_what_is_older_than_the_retention_in_audited_batches(settings, store):
    now = datetime.now(UTC)
    refused_at(store, now - timedelta(days=91), 5)
    refused_at(store, now - timedelta(days=89), 2)

    result = run_cli(settings, "quarantine", "prune", "--batch-size", "2")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [f"removed {count} refused input(s)" for count in (2, 2, 1)]
    assert lines[3].startswith("5 refused input(s) received before")
    assert len(quarantined(store)) == 2
    events = prune_events(store)
    assert [details["count"] for _, details in events] == [2, 2, 1]
    assert {message_id for message_id, _ in events} == {None}


def test_prune_older_than_takes_an_age_instead_of_the_retention(settings, store):
    now = datetime.now(UTC)
    refused_at(store, now - timedelta(hours=13), 3)
    refused_at(store, now - timedelta(hours=11), 1)

    result = run_cli(settings, "quarantine", "prune", "--older-than", "12h")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("3 refused input(s)")
    assert len(quarantined(store)) == 1


def test_prune_with_nothing_old_removes_nothing_and_audits_nothing(settings, store):
    refused_at(store, datetime.now(UTC), 2)

    result = run_cli(settings, "quarantine", "prune")

    assert result.exit_code == 0
    assert result.output.startswith("0 refused input(s)")
    assert len(quarantined(store)) == 2
    assert prune_events(store) == []


@pytest.mark.parametrize("age", ["12", "twelve", "0d", "12w"])
def test_prune_refuses_an_age_it_cannot_read(settings, store, age):
    result = CliRunner().invoke(
        cli,
        ["quarantine", "prune", "--older-than", age],
        env={"HUB_DATABASE_URL": settings.database_url},
    )

    assert result.exit_code == 2
    assert "--older-than" in result.output
