"""The audit chain links in batches on both databases and stays verifiable, checkpoints too."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from hub.audit import AUDIT, PENDING_COLUMNS, AuditChain, ChainMoved, _links, _write_links
from hub.settings import Settings
from hub.signing.keystore import Keystore, init_keystore
from hub.signing.trust import TrustStore
from hub.store.migrate import upgrade_database
from hub.store.repository import Store, audit_event, utcnow


@pytest.fixture
def store(database_url, tmp_path):
    upgrade_database(Settings(var_dir=tmp_path, database_url=database_url))
    store = Store.from_url(database_url)
    yield store
    store.close()


def write_audit_rows(store: Store, count: int) -> None:
    with store.transaction() as connection:
        for number in range(count):
            audit_event(connection, str(uuid.uuid4()), "routed", utcnow(), number=number)


def test_rows_linked_over_several_batches_form_one_verifiable_chain(store):
    chain = AuditChain(store)
    write_audit_rows(store, 25)
    assert [chain.link_pending(limit=10) for _ in range(4)] == [10, 10, 5, 0]
    write_audit_rows(store, 7)
    assert chain.link_pending(limit=10) == 7

    report = chain.verify()
    assert report.intact
    assert (report.rows_checked, report.pending) == (32, 0)
    with store.reading() as connection:
        positions = list(connection.scalars(select(AUDIT.c.chain_seq).order_by(AUDIT.c.id)))
    assert positions == list(range(1, 33))


def test_an_edit_after_batch_linking_is_named_and_the_signed_head_still_checks(store, tmp_path):
    chain = AuditChain(store)
    write_audit_rows(store, 12)
    chain.link_pending()
    init_keystore(tmp_path / "keys", ["hub"])
    keystore = Keystore(tmp_path / "keys")
    trust = TrustStore.from_pems([keystore.ca_certificate_pem()])
    assert chain.checkpoint(keystore.identity("hub")) == 12
    write_audit_rows(store, 3)
    chain.link_pending()
    assert chain.verify(trust).intact
    assert chain.verify(trust).checkpoints_checked == 1

    with store.transaction() as connection:
        connection.execute(update(AUDIT).where(AUDIT.c.chain_seq == 14).values(event="edited"))
    report = chain.verify(trust)
    assert report.reason == "its content does not match its hash (edited)"


def test_links_computed_from_a_head_that_moved_are_not_written(store):
    chain = AuditChain(store)
    write_audit_rows(store, 5)
    with store.reading() as connection:
        stale = connection.execute(select(*PENDING_COLUMNS).order_by(AUDIT.c.id)).all()
    assert chain.link_pending(limit=2) == 2  # another chainer got there first

    with pytest.raises(ChainMoved), store.transaction() as connection:
        _write_links(connection, _links(stale, None))
    assert chain.link_pending() == 3
    assert chain.verify().intact
