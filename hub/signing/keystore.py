"""The keystore: one certificate and private key per office system, loaded once per process.

Layout of ``keystore_dir``: ``<name>.pem`` (certificate) with ``<name>.key.pem`` (private
key, encrypted with ``keystore_password`` when one is set), or ``<name>.p12`` (PKCS#12
holding both); ``ca.pem`` is the certificate of the CA that issued them. ``hub keys
init`` creates a test CA and identities for the demo and the tests, keeping the CA's
private key out of the keystore (``<var_dir>/ca``); production keystores hold the
offices' real (qualified) certificates.

Loading a PEM key costs tens of milliseconds, so identities are cached: signing must
never load a key per call. A cached identity is read again only when its files change
(modification time, size or inode, as the region file is watched), so an office's
renewed certificate is taken without a restart; a change that cannot be read (a pair
half copied, a certificate not matching its key) is logged once and the identity
loaded before is kept, as a broken region file is.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from hub.errors import ConfigurationError
from hub.logging import get_logger
from hub.signing.trust import CITIZENS, OFFICES, PLATFORMS, PROFIL_ZAUFANY

log = get_logger(__name__)

CA_NAME = "ca"
# The hub's own identity: it signs audit checkpoints and seals deliveries to legacy systems.
HUB_IDENTITY = "hub"
RSA_KEY_BITS = 2048
TEST_ORGANISATION = "Regionalny hub e-administracji (test)"
# What tells one version of an identity's files from another without reading them:
# (st_mtime_ns, st_size, st_ino) of each file, zeros for a file that is not there.
FileVersion = tuple[tuple[int, int, int], ...]
MISSING_FILE = (0, 0, 0)


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """A certificate with its private key, ready for XML signing and WS-Security."""

    name: str
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def certificate_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, for libraries that take bytes (xmlsec)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def subject(self) -> str:
        """The certificate's subject, RFC 4514."""
        return self.certificate.subject.rfc4514_string()


@dataclass(frozen=True, slots=True)
class _Cached:
    """An identity as loaded, with the version of the files it was loaded from."""

    identity: SigningIdentity
    version: FileVersion


class Keystore:
    """Reads identities from a folder; each is loaded once per process, and again on change."""

    def __init__(self, directory: Path, password: str = "") -> None:
        self.directory = directory
        self._password = password.encode() or None
        self._loaded: dict[str, _Cached] = {}
        # The version of a change that failed to load, so it is tried (and logged) once.
        self._refused: dict[str, FileVersion] = {}
        self._loads: Counter[str] = Counter()
        self._lock = threading.Lock()

    def identity(self, name: str) -> SigningIdentity:
        """The identity ``name`` (an office id, or a system such as ``hub``).

        Costs a ``stat`` of its files while they are unchanged; a changed file is read
        again. The same object is returned until then, so callers may key what they
        derive from it (an xmlsec key, a WS-Security signer) on its identity.

        Raises:
            ConfigurationError: no certificate and key for ``name``, or they cannot be
                read, and no earlier version of them was loaded.
        """
        version = self._version_of(name)
        with self._lock:
            cached = self._loaded.get(name)
            if cached is not None and (
                cached.version == version or self._refused.get(name) == version
            ):
                return cached.identity
            return self._reload(name, version, cached)

    def loads(self) -> dict[str, int]:
        """How many times each identity was read from its files (once, then once a change)."""
        with self._lock:
            return dict(self._loads)

    def _reload(self, name: str, version: FileVersion, cached: _Cached | None) -> SigningIdentity:
        """Load ``name`` (the lock is held); keep ``cached`` if the new files are unreadable."""
        self._loads[name] += 1
        try:
            identity = self._load(name)
        except ConfigurationError as exc:
            if cached is None:
                raise
            self._refused[name] = version
            log.warning(
                "keystore_reload_failed",
                identity=name,
                reason=exc.reason,
                kept="the identity loaded before",
            )
            return cached.identity
        self._loaded[name] = _Cached(identity, version)
        self._refused.pop(name, None)
        if cached is not None:
            log.info("keystore_identity_reloaded", identity=name, subject=identity.subject)
        return identity

    def _version_of(self, name: str) -> FileVersion:
        pkcs12_path = self.directory / f"{name}.p12"
        if pkcs12_path.exists():
            return (_file_version(pkcs12_path),)
        return (
            _file_version(self.directory / f"{name}.pem"),
            _file_version(self.directory / f"{name}.key.pem"),
        )

    def ca_certificate_pem(self) -> bytes:
        """The issuing CA's certificate (``ca.pem``)."""
        path = self.directory / f"{CA_NAME}.pem"
        if not path.exists():
            raise ConfigurationError(f"no CA certificate at {path}; run: hub keys init")
        return path.read_bytes()

    def _load(self, name: str) -> SigningIdentity:
        pkcs12_path = self.directory / f"{name}.p12"
        if pkcs12_path.exists():
            return self._load_pkcs12(name, pkcs12_path)
        certificate_path = self.directory / f"{name}.pem"
        key_path = self.directory / f"{name}.key.pem"
        if not certificate_path.exists() or not key_path.exists():
            raise ConfigurationError(
                f"keystore {self.directory} has no identity {name!r} "
                f"({name}.pem + {name}.key.pem, or {name}.p12); run: hub keys init"
            )
        try:
            certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), self._password)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"identity {name!r} in {self.directory} is unreadable: {exc}"
            ) from exc
        return _identity(name, certificate, key)

    def _load_pkcs12(self, name: str, path: Path) -> SigningIdentity:
        try:
            key, certificate, _chain = pkcs12.load_key_and_certificates(
                path.read_bytes(), self._password
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"PKCS#12 file {path} is unreadable: {exc}") from exc
        if certificate is None:
            raise ConfigurationError(f"PKCS#12 file {path} holds no certificate")
        return _identity(name, certificate, key)


def _identity(name: str, certificate: x509.Certificate, key: object) -> SigningIdentity:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"identity {name!r}: only RSA keys are supported (RSA-SHA256)")
    # A pair caught halfway through a renewal (new certificate, old key) would sign
    # what no one can verify against the certificate sent with it.
    if certificate.public_key() != key.public_key():
        raise ConfigurationError(f"identity {name!r}: the certificate does not match the key")
    return SigningIdentity(name, certificate, key)


def _file_version(path: Path) -> tuple[int, int, int]:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return MISSING_FILE
    return (status.st_mtime_ns, status.st_size, status.st_ino)


# Test identities that stand for a national platform: their keys belong to the
# simulator playing the platform, never to the keystore the hub reads.
TEST_PLATFORMS = ("epuap", "edoreczenia")
# Of those, the one that also makes the Profil Zaufany signatures (ePUAP runs PZ).
TEST_PROFIL_ZAUFANY = ("epuap",)
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def init_test_pki(
    keys_dir: Path,
    trust_dir: Path,
    names: list[str],
    *,
    ca_dir: Path | None = None,
    platforms_dir: Path | None = None,
    password: str = "",
) -> list[Path]:
    """Create the test CA, the offices' identities and the platforms', and the trust lists.

    ``names`` that are platforms (``TEST_PLATFORMS``) are made in ``platforms_dir`` (the
    simulator's keystore, default ``<keys_dir>-platforms``); the others in ``keys_dir``.
    The CA's private key stays in ``ca_dir`` (default ``<keys_dir>-ca``), out of the
    keystore the hub reads. The trust store gets the CA in ``offices/``, each platform's
    certificate pinned in ``platforms/`` and, for the test platform making the Profil
    Zaufany signatures (``TEST_PROFIL_ZAUFANY``), in ``profil-zaufany/``; ``citizens/``
    is made empty, for qualified CAs.

    Returns:
        The files written.
    """
    ca_dir = ca_dir or _beside(keys_dir, "ca")
    platforms_dir = platforms_dir or _beside(keys_dir, "platforms")
    platforms = [name for name in names if name in TEST_PLATFORMS]
    offices = [name for name in names if name not in TEST_PLATFORMS]
    written = init_keystore(keys_dir, offices, ca_dir=ca_dir, password=password)
    if platforms:
        written += init_keystore(platforms_dir, platforms, ca_dir=ca_dir, password=password)
    for folder in (OFFICES, PLATFORMS, PROFIL_ZAUFANY, CITIZENS):
        (trust_dir / folder).mkdir(parents=True, exist_ok=True)
    written += _publish(ca_dir / f"{CA_NAME}.pem", trust_dir / OFFICES)
    for platform in platforms:
        certificate = platforms_dir / f"{platform}.pem"
        written += _publish(certificate, trust_dir / PLATFORMS)
        if platform in TEST_PROFIL_ZAUFANY:
            written += _publish(certificate, trust_dir / PROFIL_ZAUFANY)
    return written


def init_keystore(
    directory: Path,
    names: list[str],
    valid_days: int = 730,
    *,
    ca_dir: Path | None = None,
    password: str = "",
) -> list[Path]:
    """Create a test CA (unless there is one) and an identity for each of ``names``.

    Existing identities are kept, so running it again only adds what is missing. The
    folder is created 0700 and each private key 0600 (created so, never loosened first);
    with ``password`` the keys are written encrypted with it.

    Args:
        directory: the keystore folder; it gets the CA's certificate (``ca.pem``) too.
        names: the identities to create.
        valid_days: how long their certificates are valid.
        ca_dir: where the CA's private key is kept (default ``<directory>-ca``).
        password: encrypts the private keys written (empty: unencrypted).

    Returns:
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    ca_dir = ca_dir or _beside(directory, "ca")
    written: list[Path] = []
    ca_key, ca_certificate, new_files = _ensure_ca(directory, ca_dir, valid_days, password)
    written += new_files
    written += _publish(ca_dir / f"{CA_NAME}.pem", directory)
    for name in names:
        if (directory / f"{name}.pem").exists() or (directory / f"{name}.p12").exists():
            continue
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        certificate = _issue(name, key, ca_key, ca_certificate, valid_days)
        written += _write_pair(directory, name, certificate, key, password)
    return written


def _beside(directory: Path, suffix: str) -> Path:
    return directory.with_name(f"{directory.name}-{suffix}")


def _publish(certificate: Path, folder: Path) -> list[Path]:
    """Copy a certificate into ``folder`` unless it holds that very certificate already."""
    target = folder / certificate.name
    content = certificate.read_bytes()
    if target.exists() and target.read_bytes() == content:
        return []
    target.write_bytes(content)
    return [target]


def _ensure_ca(
    directory: Path, ca_dir: Path, valid_days: int, password: str
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, list[Path]]:
    ca_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    _move_old_ca_key(directory, ca_dir)
    certificate_path = ca_dir / f"{CA_NAME}.pem"
    key_path = ca_dir / f"{CA_NAME}.key.pem"
    if certificate_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password.encode() or None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key, x509.load_pem_x509_certificate(certificate_path.read_bytes()), []
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    name = _name("Hub Test CA")
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days * 2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate, _write_pair(ca_dir, CA_NAME, certificate, key, password)


def _move_old_ca_key(directory: Path, ca_dir: Path) -> None:
    """Take a CA key an older ``hub keys init`` left in the keystore out of it."""
    old_key = directory / f"{CA_NAME}.key.pem"
    old_certificate = directory / f"{CA_NAME}.pem"
    if old_key.exists() and old_certificate.exists() and not (ca_dir / old_key.name).exists():
        os.replace(old_key, ca_dir / old_key.name)
        (ca_dir / old_certificate.name).write_bytes(old_certificate.read_bytes())


def _issue(
    name: str,
    key: rsa.RSAPrivateKey,
    ca_key: rsa.RSAPrivateKey,
    ca_certificate: x509.Certificate,
    valid_days: int,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_pair(
    directory: Path,
    name: str,
    certificate: x509.Certificate,
    key: rsa.RSAPrivateKey,
    password: str = "",
) -> list[Path]:
    certificate_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key.pem"
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _write_private(key_path, private_pem)
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return [certificate_path, key_path]


def _write_private(path: Path, content: bytes) -> None:
    """Write a private key into a new file that is 0600 from the moment it exists."""
    # O_EXCL: never write a key through a file (or link) someone else put there first.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
