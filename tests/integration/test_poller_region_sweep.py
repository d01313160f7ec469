"""The poller sweeps a region's ePUAP mailboxes in parallel, each office's key loaded once.

Real parts throughout: the ePUAP simulator requires WS-Security on every pull call and
trusts only the test CA; each office's calls are signed with its own key from a keystore
made by ``init_test_pki``; documents are stored in SQLite and PostgreSQL. The failing
mailbox is an office whose certificate ePUAP does not trust (another CA issued it): the
simulator refuses its calls with ``wsse:InvalidSecurity``, and its documents come in once
the office's certificate is renewed by the trusted CA. Key loading is counted with a spy
around the keystore's own load (the real files, the real crypto).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select
from structlog.testing import capture_logs
from support import Simulator, serve_in_thread

import adapters.epuap.inbound as epuap_inbound
import hub.inbound
import hub.poller
import hub.signing.keystore
from hub.poller import POLLER_LOCK, Poller
from hub.reload import RegionSource
from hub.settings import Settings
from hub.signing.keystore import Keystore, init_keystore, init_test_pki
from hub.store.models import MessageRow
from hub.store.repository import Store
from simulators.epuap.server import create_app as create_epuap_app

# Six offices, more than the pool's three threads, so threads take turns at mailboxes.
OFFICES = [(f"14650{n}_1", f"Urząd Gminy {n}", f"/ug{n}/skrytka") for n in range(1, 7)]
UNTRUSTED = OFFICES[-1]
ADDED = ("146599_1", "Urząd Gminy dodanej", "/ugdodana/skrytka")
CONCURRENCY = 3


@pytest.fixture
def keys(tmp_path: Path) -> Keystore:
    """The hub's keystore; the last office's identity is issued by a CA ePUAP does not know."""
    init_test_pki(
        tmp_path / "keys",
        tmp_path / "trust",
        ["epuap", *(office_id for office_id, _, _ in OFFICES[:-1])],
        ca_dir=tmp_path / "ca",
        platforms_dir=tmp_path / "platforms",
    )
    office_id = UNTRUSTED[0]
    init_keystore(tmp_path / "rogue", [office_id], ca_dir=tmp_path / "rogue-ca")
    for suffix in (".pem", ".key.pem"):
        shutil.copy(tmp_path / "rogue" / f"{office_id}{suffix}", tmp_path / "keys")
    return Keystore(tmp_path / "keys")


@pytest.fixture
def epuap(tmp_path: Path, keys: Keystore) -> Iterator[Simulator]:
    platform = Keystore(tmp_path / "platforms").identity("epuap")
    app = create_epuap_app(trusted_ca_pems=[keys.ca_certificate_pem()], identity=platform)
    simulator = serve_in_thread(app)
    yield simulator
    simulator.stop()


def region_text(epuap_url: str, offices: list[tuple[str, str, str]]) -> str:
    lines = ['[region]\nname = "sweep test region"\n']
    lines += [
        f'[[offices]]\nid = "{office_id}"\nname = "{name}"\nesp = "{esp}"\n'
        for office_id, name, esp in offices
    ]
    lines.append(
        f'[[inbound]]\nname = "epuap"\nkind = "epuap-pull"\n'
        f'url = "{epuap_url}/pk_external_ws/services/pull"\nws_security = true\n'
        f"concurrency = {CONCURRENCY}\n"
    )
    return "\n".join(lines)


@pytest.fixture
def region_path(tmp_path: Path, epuap: Simulator) -> Path:
    path = tmp_path / "region.toml"
    path.write_text(region_text(epuap.url, OFFICES), encoding="utf-8")
    return path


@pytest.fixture
def key_loads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every identity the keystores of this process read from their files, by name."""
    loads: Counter[str] = Counter()
    real_load = Keystore._load

    def counting_load(keystore: Keystore, name: str) -> object:
        loads[name] += 1
        return real_load(keystore, name)

    monkeypatch.setattr(Keystore, "_load", counting_load)
    return loads


@pytest.fixture
def signers_made(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every WS-Security signer the pull channel made, by the subject it signs as."""
    made: Counter[str] = Counter()
    real_signer = epuap_inbound.WsSecurity

    class CountingSigner(real_signer):  # type: ignore[misc,valid-type]
        def __init__(self, identity, **kwargs) -> None:  # type: ignore[no-untyped-def]
            made[identity.name] += 1
            super().__init__(identity, **kwargs)

    monkeypatch.setattr(epuap_inbound, "WsSecurity", CountingSigner)
    return made


def enqueue(epuap: Simulator, offices: list[tuple[str, str, str]], per_office: int) -> None:
    mailboxes = [
        {
            "address": esp,
            "office_name": name,
            "office_teryt": office_id.replace("_", ""),
            "count": per_office,
        }
        for office_id, name, esp in offices
    ]
    epuap.admin("POST", "/_sim/documents", json={"mailboxes": mailboxes, "attachments": 0})


def pending(epuap: Simulator) -> dict[str, int]:
    by_mailbox: dict[str, int] = epuap.admin("GET", "/_sim/stats")["pending_by_mailbox"]
    return {address: count for address, count in by_mailbox.items() if count}


def stored_by_office(store: Store) -> Counter[str]:
    with store.session() as session:
        rows = session.scalars(select(MessageRow)).all()
    external_ids = [row.external_id for row in rows]
    assert len(external_ids) == len(set(external_ids)), "a document was stored twice"
    return Counter(row.destination for row in rows)


def of_offices(loads: Counter[str]) -> dict[str, int]:
    """The loads of offices' identities (not the platform's, which the simulator reads)."""
    return {name: count for name, count in loads.items() if name != "epuap"}


def renew_with_trusted_ca(tmp_path: Path, office_id: str) -> None:
    """The office's certificate renewed by the CA ePUAP trusts."""
    swap_in_certificate(tmp_path, office_id, tmp_path / "ca")


def swap_in_certificate(tmp_path: Path, office_id: str, ca_dir: Path) -> None:
    """A new key and certificate from ``ca_dir`` for the office, swapped in file by file."""
    renewed = tmp_path / f"renewed-{uuid.uuid4().hex[:6]}"
    init_keystore(renewed, [office_id], ca_dir=ca_dir)
    for suffix in (".key.pem", ".pem"):
        os.replace(renewed / f"{office_id}{suffix}", tmp_path / "keys" / f"{office_id}{suffix}")


def new_poller(store: Store, settings: Settings) -> Poller:
    # The region read through a source that looks at the file on every round.
    regions = RegionSource(settings.region_path, 1e-6)
    return Poller(store, regions, settings, f"poller-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def uncached_logs(monkeypatch):
    """The modules' loggers replaced by ones not cached yet: capture_logs sees only loggers
    it configures, and an earlier test of the session may have cached the modules' own."""
    for module in (hub.inbound, hub.poller, hub.signing.keystore, epuap_inbound):
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))


def test_a_failing_mailbox_does_not_stop_the_sweep_and_its_documents_come_in_later(
    tmp_path, settings, store, epuap, uncached_logs
):
    enqueue(epuap, OFFICES, per_office=2)
    poller = new_poller(store, settings)
    trusted = [office_id for office_id, _, _ in OFFICES[:-1]]
    try:
        with capture_logs() as logs:
            first = poller.poll_round(poller.accept_while_leased())
            again = poller.poll_round(poller.accept_while_leased())
        after_two_rounds = stored_by_office(store)
        left_after_two_rounds = pending(epuap)

        renew_with_trusted_ca(tmp_path, UNTRUSTED[0])
        renewed = poller.poll_round(poller.accept_while_leased())
    finally:
        for channel in poller._channels:
            channel.stop()

    assert (first, again) == (2 * len(trusted), 0)
    assert after_two_rounds == dict.fromkeys(trusted, 2)
    assert left_after_two_rounds == {UNTRUSTED[2]: 2}
    failures = [entry for entry in logs if entry["event"] == "mailbox_poll_failed"]
    assert [entry["mailbox"] for entry in failures] == [UNTRUSTED[2], UNTRUSTED[2]]
    assert renewed == 2
    assert stored_by_office(store) == dict.fromkeys([*trusted, UNTRUSTED[0]], 2)
    assert pending(epuap) == {}


def test_each_office_key_is_loaded_once_per_process_across_rounds_and_for_an_added_office(
    tmp_path, settings, store, epuap, key_loads, signers_made
):
    trusted = OFFICES[:-1]
    (tmp_path / "region.toml").write_text(region_text(epuap.url, trusted), encoding="utf-8")
    poller = new_poller(store, settings)
    try:
        taken = []
        for _ in range(4):
            enqueue(epuap, trusted, per_office=1)
            taken.append(poller.poll_round(poller.accept_while_leased()))
        loads_after_rounds, signers_after_rounds = Counter(key_loads), Counter(signers_made)

        init_keystore(tmp_path / "keys", [ADDED[0]], ca_dir=tmp_path / "ca")
        (tmp_path / "region.toml").write_text(
            region_text(epuap.url, [*trusted, ADDED]), encoding="utf-8"
        )
        enqueue(epuap, [*trusted, ADDED], per_office=1)
        taken.append(poller.poll_round(poller.accept_while_leased()))
        taken.append(poller.poll_round(poller.accept_while_leased()))
    finally:
        for channel in poller._channels:
            channel.stop()

    office_ids = [office_id for office_id, _, _ in trusted]
    assert taken == [len(trusted)] * 4 + [len(trusted) + 1, 0]
    assert loads_after_rounds == dict.fromkeys(office_ids, 1)
    assert signers_after_rounds == dict.fromkeys(office_ids, 1)
    assert of_offices(key_loads) == dict.fromkeys([*office_ids, ADDED[0]], 1)
    assert signers_made == dict.fromkeys([*office_ids, ADDED[0]], 1)
    assert stored_by_office(store) == {**dict.fromkeys(office_ids, 5), ADDED[0]: 1}


def test_a_certificate_swapped_in_the_keystore_is_loaded_once_more_and_signs_the_next_calls(
    tmp_path, settings, store, epuap, key_loads, signers_made
):
    trusted = OFFICES[:-1]
    (tmp_path / "region.toml").write_text(region_text(epuap.url, trusted), encoding="utf-8")
    swapped_office, _, swapped_mailbox = trusted[0]
    poller = new_poller(store, settings)
    try:
        enqueue(epuap, trusted, per_office=1)
        before = poller.poll_round(poller.accept_while_leased())
        # A certificate ePUAP does not trust: that ePUAP now refuses the office's calls
        # shows the new key signs them, not a copy of the old one kept somewhere.
        swap_in_certificate(tmp_path, swapped_office, tmp_path / "rogue-ca")
        enqueue(epuap, trusted, per_office=1)
        after = poller.poll_round(poller.accept_while_leased())
        later = poller.poll_round(poller.accept_while_leased())
    finally:
        for channel in poller._channels:
            channel.stop()

    assert (before, after, later) == (len(trusted), len(trusted) - 1, 0)
    assert pending(epuap) == {swapped_mailbox: 1}
    assert key_loads[swapped_office] == 2
    assert signers_made[swapped_office] == 2
    assert all(key_loads[office_id] == 1 for office_id, _, _ in trusted[1:])
    assert all(signers_made[office_id] == 1 for office_id, _, _ in trusted[1:])


def test_a_poller_without_the_lease_stores_nothing_and_confirms_nothing(
    settings, store, epuap, uncached_logs
):
    enqueue(epuap, OFFICES[:2], per_office=1)
    assert store.acquire_singleton(POLLER_LOCK, "another-poller", 60.0)
    poller = new_poller(store, settings)
    try:
        with capture_logs() as logs:
            taken = poller.poll_round(poller.accept_while_leased())
    finally:
        for channel in poller._channels:
            channel.stop()

    assert taken == 0
    assert stored_by_office(store) == {}
    assert pending(epuap) == {OFFICES[0][2]: 1, OFFICES[1][2]: 1}
    reasons = {
        entry["mailbox"]: entry["reason"]
        for entry in logs
        if entry["event"] == "mailbox_poll_failed" and entry["mailbox"] != UNTRUSTED[2]
    }
    lost = "the poller's lease was lost; another poller holds it"
    assert reasons == {OFFICES[0][2]: lost, OFFICES[1][2]: lost}
