"""The keystore: one certificate and private key per office system, loaded once per process.

Layout of ``keystore_dir``: ``<name>.pem`` (certificate) with ``<name>.key.pem`` (private
key), or ``<name>.p12`` (PKCS#12 holding both); ``ca.pem`` is the certificate of the CA
that issued them. ``hub keys init`` creates a test CA and identities for the demo and the
tests; production keystores hold the offices' real (qualified) certificates.

Loading a PEM key costs tens of milliseconds, so identities are cached: signing must
never load a key per call.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from hub.errors import ConfigurationError

CA_NAME = "ca"
# The hub's own identity: it signs audit checkpoints and seals deliveries to legacy systems.
HUB_IDENTITY = "hub"
RSA_KEY_BITS = 2048
TEST_ORGANISATION = "Regionalny hub e-administracji (test)"


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


class Keystore:
    """Reads identities from a folder; each is loaded at most once per process."""

    def __init__(self, directory: Path, password: str = "") -> None:
        self.directory = directory
        self._password = password.encode() or None
        self._loaded: dict[str, SigningIdentity] = {}
        self._lock = threading.Lock()

    def identity(self, name: str) -> SigningIdentity:
        """The identity ``name`` (an office id, or a system such as ``hub``).

        Raises:
            ConfigurationError: no certificate and key for ``name``, or they cannot be read.
        """
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._load(name)
            return self._loaded[name]

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
    return SigningIdentity(name, certificate, key)


def init_test_pki(keys_dir: Path, trust_dir: Path, names: list[str]) -> list[Path]:
    """Create the test CA and ``names`` in ``keys_dir``, and trust that CA in ``trust_dir``."""
    written = init_keystore(keys_dir, names)
    trust_dir.mkdir(parents=True, exist_ok=True)
    (trust_dir / f"{CA_NAME}.pem").write_bytes((keys_dir / f"{CA_NAME}.pem").read_bytes())
    return written


def init_keystore(directory: Path, names: list[str], valid_days: int = 730) -> list[Path]:
    """Create a test CA (unless there is one) and an identity for each of ``names``.

    Existing identities are kept, so running it again only adds what is missing.

    Returns:
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    ca_key, ca_certificate, new_files = _ensure_ca(directory, valid_days)
    written += new_files
    for name in names:
        if (directory / f"{name}.pem").exists() or (directory / f"{name}.p12").exists():
            continue
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        certificate = _issue(name, key, ca_key, ca_certificate, valid_days)
        written += _write_pair(directory, name, certificate, key)
    return written


def _ensure_ca(
    directory: Path, valid_days: int
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, list[Path]]:
    certificate_path = directory / f"{CA_NAME}.pem"
    key_path = directory / f"{CA_NAME}.key.pem"
    if certificate_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
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
    return key, certificate, _write_pair(directory, CA_NAME, certificate, key)


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
    directory: Path, name: str, certificate: x509.Certificate, key: rsa.RSAPrivateKey
) -> list[Path]:
    certificate_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return [certificate_path, key_path]
