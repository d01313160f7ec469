"""The demo's key set-up gives the e-Doręczenia simulator the identity the hub pins.

The demo itself is not run here: its key set-up (``demo_pki``) and the arguments it
starts the platforms' simulators with (``platform_simulators``) are, the simulator as a
real process over loopback HTTP, as the demo starts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adapters.edoreczenia.client import EDoreczeniaClient
from adapters.edoreczenia.evidences import pinned_provider_trust, verified_receipt
from hub.settings import Settings
from hub.signing.trust import PLATFORMS, PROFIL_ZAUFANY
from simulators.demo import demo_pki, platform_simulators
from simulators.processes import start_simulator

OFFICE = "AE:PL-14650-11001-HUBDM-02"
CITIZEN = "AE:PL-51234-56789-BCDEF-11"


@pytest.fixture
def demo_settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path)


@pytest.fixture
def edoreczenia_url(demo_settings: Settings) -> Iterator[str]:
    module, *arguments = platform_simulators(demo_pki(demo_settings, ["146501_1"]))["edoreczenia"]
    child, url = start_simulator(module, *arguments)
    yield url
    child.stop()


def test_the_demo_makes_the_edoreczenia_identity_out_of_the_hubs_keystore_and_pins_it(
    demo_settings: Settings,
) -> None:
    platform_keys = demo_pki(demo_settings, ["146501_1"])

    assert (platform_keys / "edoreczenia.key.pem").exists()
    assert not (demo_settings.keys / "edoreczenia.key.pem").exists()
    pinned = demo_settings.trust / PLATFORMS / "edoreczenia.pem"
    assert pinned.read_bytes() == (platform_keys / "edoreczenia.pem").read_bytes()
    assert not (demo_settings.trust / PROFIL_ZAUFANY / "edoreczenia.pem").exists()


def test_the_simulator_the_demo_starts_seals_evidences_the_hub_verifies(
    demo_settings: Settings, edoreczenia_url: str
) -> None:
    identity = requests.get(f"{edoreczenia_url}/_sim/identity", timeout=10).json()
    pinned = demo_settings.trust / PLATFORMS / "edoreczenia.pem"
    assert identity["certificate_pem"].encode() == pinned.read_bytes()

    client = EDoreczeniaClient(
        f"{edoreczenia_url}/api/v1",
        f"{edoreczenia_url}/oauth2/token",
        client_id="hub",
        client_secret="demo-secret",
        timeout_s=5.0,
    )
    try:
        sent = client.send_message(
            OFFICE,
            [CITIZEN],
            subject="Decyzja",
            body_bytes=b"<Decyzja/>",
            filename="decyzja.xml",
            content_type="application/xml",
        )
        evidences = client.evidences(OFFICE, sent.message_ids[0])
    finally:
        client.close()

    trust = pinned_provider_trust(demo_settings.trust, {}, "the demo")
    receipts = [verified_receipt(evidence, trust) for evidence in evidences]
    assert [receipt.kind for receipt in receipts] == ["e-Doręczenia A.1", "e-Doręczenia D.1"]
    assert all(receipt.signature_valid is True for receipt in receipts)
