"""The trust store: the CA certificates whose signers the hub believes."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from hub.errors import ConfigurationError, SignatureInvalid


class TrustStore:
    """CA certificates read once from a folder of PEM files (``trust_store_dir``)."""

    def __init__(self, authorities: list[x509.Certificate] | None = None) -> None:
        self._authorities = authorities
        self._directory: Path | None = None

    @classmethod
    def on_first_use(cls, directory: Path) -> TrustStore:
        """A trust store read from ``directory`` when it first checks a certificate.

        Workers build every route step at start; a hub that never meets a signature
        must not need a trust store to start, and one that does gets the clear
        ``ConfigurationError`` of ``from_directory`` at that document.
        """
        store = cls()
        store._directory = directory
        return store

    @property
    def authorities(self) -> list[x509.Certificate]:
        """The trusted CA certificates (read now if this store was made lazily)."""
        if self._authorities is None:
            assert self._directory is not None, "a trust store needs authorities or a folder"
            self._authorities = TrustStore.from_directory(self._directory).authorities
        return self._authorities

    @classmethod
    def from_directory(cls, directory: Path) -> TrustStore:
        """Every certificate in every ``*.pem`` file of ``directory``.

        Raises:
            ConfigurationError: the folder is missing or holds no certificate.
        """
        if not directory.is_dir():
            raise ConfigurationError(f"trust store {directory} does not exist; run: hub keys init")
        authorities = [
            certificate
            for path in sorted(directory.glob("*.pem"))
            for certificate in x509.load_pem_x509_certificates(path.read_bytes())
        ]
        if not authorities:
            raise ConfigurationError(f"trust store {directory} holds no CA certificate")
        return cls(authorities)

    @classmethod
    def from_pems(cls, pems: list[bytes]) -> TrustStore:
        """A trust store of the given PEM certificates."""
        return cls([x509.load_pem_x509_certificate(pem) for pem in pems])

    def check(self, certificate: x509.Certificate, at: datetime.datetime) -> None:
        """Require ``certificate`` to be issued by a trusted CA and valid at ``at``.

        Raises:
            SignatureInvalid: naming what is wrong with the certificate.
        """
        subject = certificate.subject.rfc4514_string()
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            raise SignatureInvalid(
                f"the certificate of {subject} was not valid at {at.isoformat()} "
                f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d})"
            )
        if not any(_issued_by(certificate, authority) for authority in self.authorities):
            raise SignatureInvalid(f"the certificate of {subject} is not issued by a trusted CA")


def _issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    if certificate.issuer != authority.subject:
        return False
    public_key = authority.public_key()
    hash_algorithm = certificate.signature_hash_algorithm
    if hash_algorithm is None:
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                padding.PKCS1v15(),
                hash_algorithm,
            )
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(
                certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hash_algorithm)
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True
