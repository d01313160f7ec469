"""Deliveries to legacy systems carry the hub's seal, which the receiver checks on its own."""

from __future__ import annotations

import pytest
from support import OFFICES, serve_in_thread

from hub.envelope import Address, Envelope
from hub.signing.keystore import HUB_IDENTITY, init_keystore, init_test_pki
from simulators.eod.server import Registry
from simulators.eod.server import create_app as create_eod_app

PISMO = "http://crd.gov.pl/wzor/2013/12/12/1410/"
BODY = (
    f'<w:Dokument xmlns:w="{PISMO}"><w:Tresc>Wniosek o wydanie zaświadczenia</w:Tresc></w:Dokument>'
)


@pytest.fixture
def pki(tmp_path):
    init_test_pki(tmp_path / "keys", tmp_path / "trust", [HUB_IDENTITY])
    return tmp_path / "keys"


@pytest.fixture
def registry():
    return Registry()


@pytest.fixture
def eod(pki, registry):
    simulator = serve_in_thread(
        create_eod_app(registry, (pki / "ca.pem").read_bytes(), require_seal=True)
    )
    yield simulator
    simulator.stop()


@pytest.fixture
def region_path(tmp_path, eod):
    lines = ['[region]\nname = "test region"\n']
    lines += [f'[[offices]]\nid = "{o}"\nname = "{n}"\nesp = "{e}"\n' for o, n, e in OFFICES]
    lines.append(
        f'[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        f'url = "{eod.url}/offices/{{office}}/documents"\n'
        f'[[routes]]\nname = "sealed"\ndocument_type = "{PISMO}"\n'
        'target_system = "eod"\nsteps = ["check_well_formed", "seal_for_delivery"]\n'
    )
    path = tmp_path / "region.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def filing():
    return Envelope(
        document_type=PISMO, source="epuap", destination=Address("1421"), body=BODY.encode()
    )


def test_a_sealed_delivery_is_checked_and_registered_by_the_eod(hub, registry):
    hub.store.accept(filing())
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    assert (len(registry.by_key), registry.sealed) == (1, 1)


def test_a_delivery_sealed_by_a_key_the_eod_does_not_trust_is_refused_for_good(
    hub, settings, tmp_path
):
    # The hub's key is replaced by one from another CA: the EOD refuses the seal, which
    # no retry can mend, so the delivery goes to the dead letters with the EOD's reason.
    init_keystore(tmp_path / "stranger", [HUB_IDENTITY])
    for suffix in (".pem", ".key.pem"):
        (settings.keys / f"{HUB_IDENTITY}{suffix}").write_bytes(
            (tmp_path / "stranger" / f"{HUB_IDENTITY}{suffix}").read_bytes()
        )
    hub.store.accept(filing())
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    [dead] = hub.store.dead_deliveries()
    assert "seal-invalid" in (dead.last_error or "")
    assert "not issued by the trusted CA" in (dead.last_error or "")
