"""Keys and the store are private from the moment they exist, and the CA key is elsewhere."""

import contextlib
import os
import stat

import pytest

from hub.errors import ConfigurationError, SignatureInvalid
from hub.signing.keystore import Keystore, init_keystore, init_test_pki
from hub.signing.trust import (
    CITIZENS,
    OFFICES,
    PLATFORMS,
    PROFIL_ZAUFANY,
    TrustLists,
    TrustStore,
)
from hub.signing.xades import sign_document, verify_document
from hub.store.database import create_store_engine

WNIOSEK = b'<w:Wniosek xmlns:w="urn:test:wniosek"><w:Tresc>Prosze</w:Tresc></w:Wniosek>'


@contextlib.contextmanager
def permissive_umask():
    """A umask that lets everyone read: what the hub creates must be private regardless."""
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_key_files_are_0600_and_keystore_folders_0700_even_under_a_permissive_umask(tmp_path):
    with permissive_umask():
        written = init_keystore(tmp_path / "keys", ["146501_1"], ca_dir=tmp_path / "ca")

    keys = [path for path in written if path.name.endswith(".key.pem")]
    assert {path.name for path in keys} == {"ca.key.pem", "146501_1.key.pem"}
    assert all(mode(path) == 0o600 for path in keys)
    assert mode(tmp_path / "keys") == 0o700
    assert mode(tmp_path / "ca") == 0o700


def test_the_test_cas_private_key_is_kept_out_of_the_keystore(tmp_path):
    init_test_pki(
        tmp_path / "keys",
        tmp_path / "trust",
        ["hub", "epuap", "146501_1"],
        ca_dir=tmp_path / "ca",
        platforms_dir=tmp_path / "platforms",
    )

    keystore_files = {path.name for path in (tmp_path / "keys").iterdir()}
    assert "ca.key.pem" not in keystore_files
    assert "ca.pem" in keystore_files  # the certificate, to tell others whom to trust
    assert (tmp_path / "ca" / "ca.key.pem").exists()
    # The simulated platform's key is the simulator's, not the hub's.
    assert "epuap.key.pem" not in keystore_files
    assert (tmp_path / "platforms" / "epuap.key.pem").exists()


def test_an_older_keystores_ca_key_is_moved_out_and_still_issues(tmp_path):
    keys = tmp_path / "keys"
    init_keystore(keys, ["146501_1"], ca_dir=keys)  # as hub keys init used to lay it out
    assert (keys / "ca.key.pem").exists()

    init_keystore(keys, ["146301_1"], ca_dir=tmp_path / "ca")

    assert not (keys / "ca.key.pem").exists()
    assert (tmp_path / "ca" / "ca.key.pem").exists()
    keystore = Keystore(keys)
    signed = sign_document(WNIOSEK, keystore.identity("146301_1"))
    assert verify_document(signed, TrustStore.from_pems([keystore.ca_certificate_pem()]))


def test_each_trust_list_has_its_own_folder(tmp_path):
    init_test_pki(
        tmp_path / "keys",
        tmp_path / "trust",
        ["epuap", "146501_1"],
        ca_dir=tmp_path / "ca",
        platforms_dir=tmp_path / "platforms",
    )
    trust = tmp_path / "trust"

    assert sorted(path.name for path in (trust / OFFICES).iterdir()) == ["ca.pem"]
    assert sorted(path.name for path in (trust / PLATFORMS).iterdir()) == ["epuap.pem"]
    assert sorted(path.name for path in (trust / PROFIL_ZAUFANY).iterdir()) == ["epuap.pem"]
    assert list((trust / CITIZENS).iterdir()) == []


def test_an_office_signature_is_no_citizens_signature_unless_the_offices_ca_is_listed(tmp_path):
    init_test_pki(
        tmp_path / "keys",
        tmp_path / "trust",
        ["epuap", "146301_1"],
        ca_dir=tmp_path / "ca",
        platforms_dir=tmp_path / "platforms",
    )
    signed = sign_document(WNIOSEK, Keystore(tmp_path / "keys").identity("146301_1"))

    lists = TrustLists.on_first_use(tmp_path / "trust")
    assert verify_document(signed, lists.offices).signer.startswith("CN=146301_1")
    with pytest.raises(SignatureInvalid, match="not issued by a trusted CA"):
        verify_document(signed, lists.signatures)

    (tmp_path / "trust" / CITIZENS / "ca.pem").write_bytes(
        (tmp_path / "ca" / "ca.pem").read_bytes()
    )
    relisted = TrustLists.on_first_use(tmp_path / "trust")
    assert verify_document(signed, relisted.signatures).signer.startswith("CN=146301_1")


def test_with_a_keystore_password_office_keys_are_encrypted_and_need_it(tmp_path):
    init_keystore(tmp_path / "keys", ["146501_1"], ca_dir=tmp_path / "ca", password="tajne-haslo")

    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "keys" / "146501_1.key.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "ca" / "ca.key.pem").read_bytes()
    with pytest.raises(ConfigurationError, match="unreadable"):
        Keystore(tmp_path / "keys").identity("146501_1")
    with pytest.raises(ConfigurationError, match="unreadable"):
        Keystore(tmp_path / "keys", "zle-haslo").identity("146501_1")
    identity = Keystore(tmp_path / "keys", "tajne-haslo").identity("146501_1")
    assert identity.subject.startswith("CN=146501_1")
    # Running it again with the password adds identities under the same, encrypted CA.
    init_keystore(tmp_path / "keys", ["146301_1"], ca_dir=tmp_path / "ca", password="tajne-haslo")
    assert Keystore(tmp_path / "keys", "tajne-haslo").identity("146301_1")


def test_a_new_sqlite_database_file_is_0600(tmp_path):
    with permissive_umask():
        engine = create_store_engine(f"sqlite:///{tmp_path / 'hub.db'}")
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE t (a INTEGER)")
        engine.dispose()

    assert mode(tmp_path / "hub.db") == 0o600
    for companion in ("hub.db-wal", "hub.db-shm"):
        if (tmp_path / companion).exists():
            assert mode(tmp_path / companion) == 0o600


def test_the_edoreczenia_identity_is_the_simulators_pinned_as_a_platform_and_no_pz_signer(
    tmp_path,
):
    init_test_pki(
        tmp_path / "keys",
        tmp_path / "trust",
        ["epuap", "edoreczenia", "146501_1"],
        ca_dir=tmp_path / "ca",
        platforms_dir=tmp_path / "platforms",
    )
    trust = tmp_path / "trust"

    assert "edoreczenia.key.pem" not in {path.name for path in (tmp_path / "keys").iterdir()}
    assert (tmp_path / "platforms" / "edoreczenia.key.pem").exists()
    pinned = (trust / PLATFORMS / "edoreczenia.pem").read_bytes()
    assert pinned == (tmp_path / "platforms" / "edoreczenia.pem").read_bytes()
    # e-Doręczenia makes no Profil Zaufany signatures: its certificate names no citizen.
    assert sorted(path.name for path in (trust / PROFIL_ZAUFANY).iterdir()) == ["epuap.pem"]
