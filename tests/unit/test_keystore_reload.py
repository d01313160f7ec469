"""The keystore reads an identity once, and again only when its files change."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

import hub.signing.keystore
from hub.errors import ConfigurationError
from hub.signing.keystore import Keystore, init_keystore

OFFICE = "146501_1"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    init_keystore(tmp_path / "keys", [OFFICE], ca_dir=tmp_path / "ca")
    return tmp_path / "keys"


def renewed_pair(tmp_path: Path, folder: str) -> Path:
    """A new key and certificate for the office, from the same CA, in a folder of their own."""
    init_keystore(tmp_path / folder, [OFFICE], ca_dir=tmp_path / "ca")
    return tmp_path / folder


def swap_in(source: Path, keys: Path, *suffixes: str) -> None:
    for suffix in suffixes:
        os.replace(source / f"{OFFICE}{suffix}", keys / f"{OFFICE}{suffix}")


@pytest.fixture
def uncached_logs(monkeypatch):
    """The modules' loggers replaced by ones not cached yet: capture_logs sees only loggers
    it configures, and an earlier test of the session may have cached the modules' own."""
    for module in (hub.signing.keystore,):
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))


def test_an_unchanged_identity_is_read_once_and_the_same_object_is_handed_out(keys):
    keystore = Keystore(keys)

    identities = [keystore.identity(OFFICE) for _ in range(50)]

    assert all(identity is identities[0] for identity in identities)
    assert keystore.loads() == {OFFICE: 1}


def test_a_renewed_pair_is_read_once_more_and_its_certificate_is_handed_out(tmp_path, keys):
    keystore = Keystore(keys)
    old = keystore.identity(OFFICE)

    swap_in(renewed_pair(tmp_path, "renewed"), keys, ".key.pem", ".pem")
    new = [keystore.identity(OFFICE) for _ in range(5)]

    assert new[0].certificate != old.certificate
    assert all(identity is new[0] for identity in new)
    assert keystore.loads() == {OFFICE: 2}


def test_a_half_swapped_pair_is_refused_once_and_the_old_identity_kept_until_it_is_whole(
    tmp_path, keys, uncached_logs
):
    keystore = Keystore(keys)
    old = keystore.identity(OFFICE)
    renewed = renewed_pair(tmp_path, "renewed")

    swap_in(renewed, keys, ".pem")  # the new certificate, the old key still in place
    with capture_logs() as logs:
        during = [keystore.identity(OFFICE) for _ in range(5)]
    swap_in(renewed, keys, ".key.pem")
    after = keystore.identity(OFFICE)

    assert all(identity is old for identity in during)
    assert [entry["event"] for entry in logs] == ["keystore_reload_failed"]
    assert "does not match" in logs[0]["reason"]
    assert after.certificate == keystore.identity(OFFICE).certificate != old.certificate
    assert keystore.loads() == {OFFICE: 3}


def test_a_certificate_that_does_not_match_its_key_is_refused_at_first_load(tmp_path, keys):
    other = renewed_pair(tmp_path, "other")
    shutil.copy(other / f"{OFFICE}.pem", keys / f"{OFFICE}.pem")

    with pytest.raises(ConfigurationError, match="does not match the key"):
        Keystore(keys).identity(OFFICE)


def test_an_identity_that_is_not_there_is_still_a_configuration_error(keys):
    with pytest.raises(ConfigurationError, match="has no identity 'nobody'"):
        Keystore(keys).identity("nobody")
