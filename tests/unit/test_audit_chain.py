"""The audit chain shows every edit, deletion and reordering, and signed heads show rewrites."""

from types import SimpleNamespace

import pytest
from sqlalchemy import delete, select, update

from hub.audit import AUDIT, AuditChain, row_hash
from hub.envelope import Address, Envelope
from hub.settings import Settings
from hub.signing.keystore import Keystore, init_keystore
from hub.signing.trust import TrustStore
from hub.store.migrate import upgrade_database
from hub.store.repository import PlannedDelivery, Store


@pytest.fixture
def store(tmp_path):
    settings = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_database(settings)
    store = Store.from_url(settings.database_url)
    for _ in range(3):
        envelope = Envelope(
            document_type="t", source="epuap", destination=Address("14"), body=b"<a/>"
        )
        store.accept(envelope)
        [ticket] = store.record_routing(str(envelope.envelope_id), [PlannedDelivery("eod@14", "r")])
        claim = store.claim_delivery(ticket.delivery_id, "w", 60)
        store.complete_delivery(ticket.delivery_id, claim, "REF")
    yield store
    store.close()


@pytest.fixture
def chain(store):
    chain = AuditChain(store)
    chain.link_pending()
    return chain


def rows(store):
    with store.reading() as connection:
        return connection.execute(select(AUDIT).order_by(AUDIT.c.chain_seq)).all()


def change(store, statement):
    with store.transaction() as connection:
        connection.execute(statement)


def test_every_state_change_is_chained_and_the_chain_verifies(store, chain):
    events = [row.event for row in rows(store)]
    assert events[:4] == ["accepted", "routed", "delivering", "delivered"]
    assert len(events) == 12
    report = chain.verify()
    assert report.intact
    assert (report.rows_checked, report.pending) == (12, 0)


def test_an_edited_row_is_named(store, chain):
    victim = rows(store)[5]
    change(
        store, update(AUDIT).where(AUDIT.c.id == victim.id).values(details='{"endpoints": ["x"]}')
    )
    report = chain.verify()
    assert (report.first_broken_id, report.reason) == (
        victim.id,
        "its content does not match its hash (edited)",
    )


def test_a_deleted_row_is_named_by_the_row_after_it(store, chain):
    chained = rows(store)
    change(store, delete(AUDIT).where(AUDIT.c.id == chained[4].id))
    report = chain.verify()
    assert report.first_broken_id == chained[5].id
    assert "missing" in report.reason


def test_two_rows_swapped_are_caught(store, chain):
    first, second = rows(store)[2:4]
    change(store, update(AUDIT).where(AUDIT.c.id == first.id).values(chain_seq=-1))
    change(store, update(AUDIT).where(AUDIT.c.id == second.id).values(chain_seq=first.chain_seq))
    change(store, update(AUDIT).where(AUDIT.c.id == first.id).values(chain_seq=second.chain_seq))
    assert chain.verify().first_broken_id == second.id


def test_rows_written_after_linking_wait_and_are_then_chained(store, chain):
    envelope = Envelope(document_type="t", source="epuap", destination=Address("14"), body=b"<b/>")
    store.accept(envelope)
    assert chain.verify().pending == 1
    assert chain.link_pending() == 1
    assert chain.verify().intact


def test_a_consistently_rewritten_chain_is_caught_by_the_signed_checkpoint(store, chain, tmp_path):
    init_keystore(tmp_path / "keys", ["hub"])
    keystore = Keystore(tmp_path / "keys")
    trust = TrustStore.from_pems([keystore.ca_certificate_pem()])
    chain.checkpoint(keystore.identity("hub"))
    assert chain.verify(trust).intact
    assert chain.verify(trust).checkpoints_checked == 1

    # Rewrite history and recompute every hash after it, as a careful forger would.
    forged = rows(store)
    previous = forged[0].previous_hash
    with store.transaction() as connection:
        for row in forged:
            details = '{"forged": true}' if row.chain_seq == 3 else row.details
            rewritten = SimpleNamespace(**{**row._asdict(), "details": details})
            new_hash = row_hash(previous, rewritten)
            connection.execute(
                update(AUDIT)
                .where(AUDIT.c.id == row.id)
                .values(details=details, previous_hash=previous, row_hash=new_hash)
            )
            previous = new_hash

    assert chain.verify().intact  # the chain alone cannot tell ...
    report = chain.verify(trust)  # ... the signed head can
    assert not report.intact
    assert "differs from what checkpoint" in report.reason
