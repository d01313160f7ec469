"""The client registry on a real SQLite file: tokens, rotation, revocation, and the audit chain."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import hub.broker.codec as codec
import hub.store.repository as repository
import hub.workers as workers
from hub.envelope import RESERVED_HEADERS, is_reserved_header
from hub.errors import ClientRegistryError
from hub.identity import ClientRegistry, secret_digest
from hub.settings import Settings
from hub.signing.steps import SIGNATURE_CHECKS
from hub.store.migrate import upgrade_database
from hub.store.repository import Store
from hub.store.tables import AUDIT, CLIENTS

WARSZAWA, RADOM = "146501_1", "146301_1"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path):
    settings = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_database(settings)
    store = Store.from_url(settings.database_url)
    yield store
    store.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def registry(store, clock):
    return ClientRegistry(store, clock)


def test_a_client_is_known_by_its_token_and_only_its_digest_is_kept(registry, store):
    token = registry.add("eod-warszawa", WARSZAWA, sources=["eod"])

    client = registry.authenticate(token)
    assert (client.name, client.office, client.sources) == ("eod-warszawa", WARSZAWA, {"eod"})
    assert client.apis == {"intake", "cases"}
    with store.reading() as connection:
        row = connection.execute(select(CLIENTS)).one()
    assert row.secret_sha256 == secret_digest(token)
    assert token not in json.dumps([str(value) for value in row])
    assert registry.authenticate(token + "x") is None
    assert registry.authenticate("") is None


def test_the_portal_and_the_region_get_their_own_apis_and_no_office(registry):
    portal = registry.authenticate(registry.add("portal", "portal"))
    robot = registry.authenticate(registry.add("grafana", "region", role="viewer"))

    assert (portal.office, portal.is_portal, portal.apis) == (None, True, {"cases"})
    assert (robot.office, robot.apis, robot.role) == (None, {"monitoring"}, "viewer")


@pytest.mark.parametrize(
    ("acts_for", "options", "reason"),
    [
        (WARSZAWA, {"sources": []}, "name its --source"),
        ("portal", {"apis": ["intake"], "sources": ["forms"]}, "office's systems only"),
        (WARSZAWA, {"apis": ["telepathy"], "sources": ["eod"]}, "unknown API"),
        ("region", {"apis": ["monitoring"]}, "give it a --role"),
        (WARSZAWA, {"apis": []}, "no API"),
    ],
)
def test_a_client_that_could_not_work_is_refused_at_once(registry, acts_for, options, reason):
    with pytest.raises(ClientRegistryError, match=reason):
        registry.add("bad", acts_for, **options)
    assert registry.records() == []


def test_a_name_is_registered_once(registry):
    registry.add("eod", WARSZAWA, sources=["eod"])
    with pytest.raises(ClientRegistryError, match="exists"):
        registry.add("eod", RADOM, sources=["eod"])
    assert [record.client.acts_for for record in registry.records()] == [WARSZAWA]


def test_a_rotated_token_overlaps_its_successor_until_the_overlap_ends(registry, clock):
    old = registry.add("eod", WARSZAWA, sources=["eod"])
    new = registry.rotate("eod", timedelta(hours=24))

    assert registry.authenticate(old).name == registry.authenticate(new).name == "eod"
    clock.now += timedelta(hours=24, seconds=1)
    assert registry.authenticate(old) is None
    assert registry.authenticate(new).name == "eod"


def test_a_rotation_without_overlap_ends_the_old_token_at_once(registry):
    old = registry.add("eod", WARSZAWA, sources=["eod"])
    new = registry.rotate("eod", timedelta(0))
    assert registry.authenticate(old) is None
    assert registry.authenticate(new).name == "eod"


def test_a_revoked_client_is_refused_with_every_token_it_had(registry):
    old = registry.add("eod", WARSZAWA, sources=["eod"])
    new = registry.rotate("eod", timedelta(hours=1))
    registry.revoke("eod")

    assert registry.authenticate(old) is None
    assert registry.authenticate(new) is None
    assert registry.records() == []
    [record] = registry.records(include_revoked=True)
    assert record.revoked_at is not None
    with pytest.raises(ClientRegistryError, match="no active client"):
        registry.rotate("eod", timedelta(0))


def test_a_client_certificate_names_its_client_until_revoked(registry):
    registry.add("eod", WARSZAWA, sources=["eod"], certificate_sha256="ab" * 32)
    assert registry.by_certificate("AB" * 32).name == "eod"
    assert registry.by_certificate("cd" * 32) is None
    registry.revoke("eod")
    assert registry.by_certificate("ab" * 32) is None


def test_every_change_to_a_client_is_in_the_audit_log_without_its_secret(registry, store):
    token = registry.add("eod", WARSZAWA, sources=["eod"])
    rotated = registry.rotate("eod", timedelta(minutes=5))
    registry.revoke("eod")

    with store.reading() as connection:
        rows = connection.execute(select(AUDIT.c.event, AUDIT.c.details).order_by(AUDIT.c.id)).all()
    assert [event for event, _ in rows] == ["client-added", "client-rotated", "client-revoked"]
    assert all(json.loads(details)["client"] == "eod" for _, details in rows)
    assert not any(secret in details for _, details in rows for secret in (token, rotated))


def test_every_header_the_core_writes_is_reserved():
    written_by_the_core = {
        SIGNATURE_CHECKS,
        repository.FORWARDED_FROM,
        repository.DEADLINE_HEADER,
        *(name for name, _ in repository.PARTY_HEADERS),
        workers.ENDPOINT_HEADER,
        workers.REASON_HEADER,
        codec.CORRELATION_HEADER,
        "signed_by",
        "mapped-by",
        "mapped-from",
    }
    assert all(is_reserved_header(name) for name in written_by_the_core)
    assert is_reserved_header("Signature-Checks")
    assert is_reserved_header("hub-anything")
    assert not is_reserved_header("epuap-recipient")
    assert "epuap-recipient" not in RESERVED_HEADERS
