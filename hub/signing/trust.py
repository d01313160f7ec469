"""The trust store: the certificates whose signers the hub believes, one list per kind of signer.

The trust store folder (``trust_store_dir``) holds one trust list per folder, and each
verification path reads only its own:

- ``platforms/``: the national platforms' certificates, pinned (``epuap.pem``,
  ``edoreczenia.pem``): their SOAP answers, pushes and receipts (UPP, UPD, evidences).
- ``offices/``: the CA of the offices' own certificates (the hub's keystore): the
  hub's seals and audit checkpoints.
- ``citizens/``: the qualified CAs whose certificates sign citizens' and businesses'
  documents.
- ``profil-zaufany/``: the certificate(s) that make Profil Zaufany signatures; only a
  signature of one of them names a citizen through its signed ClaimedRole.

A list may name a CA (its certificates' signers are believed) or pin a certificate
itself (exactly that certificate is believed).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
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
        self._union: list[Path] | None = None
        self._may_be_empty = False

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
        if self._authorities is None and self._union is not None:
            self._authorities = _read_union(self._union, self._may_be_empty)
        if self._authorities is None:
            assert self._directory is not None, "a trust store needs authorities or a folder"
            self._authorities = TrustStore.from_directory(self._directory).authorities
        return self._authorities

    def authorities_if_any(self) -> list[x509.Certificate]:
        """The certificates of this list, or none if its folder is missing or empty."""
        try:
            return self.authorities
        except ConfigurationError:
            return []

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

    @classmethod
    def union_on_first_use(
        cls, directories: list[Path], *, may_be_empty: bool = False
    ) -> TrustStore:
        """A trust store of every certificate in those of ``directories`` that exist.

        Read at the first check. Raises there ``ConfigurationError`` if none of the folders
        holds a certificate, unless ``may_be_empty`` (a list that believes no one).
        """
        store = cls()
        store._union = directories
        store._may_be_empty = may_be_empty
        return store

    def believes(self, certificate: x509.Certificate) -> bool:
        """Whether ``certificate`` is one of this list's or issued by one of them."""
        return any(
            certificate == authority or _issued_by(certificate, authority)
            for authority in self.authorities
        )

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
        if not self.believes(certificate):
            raise SignatureInvalid(f"the certificate of {subject} is not issued by a trusted CA")


PLATFORMS = "platforms"
OFFICES = "offices"
CITIZENS = "citizens"
PROFIL_ZAUFANY = "profil-zaufany"
TRUST_LISTS = (PLATFORMS, OFFICES, CITIZENS, PROFIL_ZAUFANY)


@dataclass(frozen=True, slots=True)
class TrustLists:
    """The trust store's lists, each read from its own folder at its first use.

    ``signatures`` is what a citizen's signed document is checked against: the
    qualified CAs and the Profil Zaufany certificates (which make citizens' signatures
    too); whether a valid signature is a Profil Zaufany one is ``profil_zaufany``'s call.
    """

    platforms: TrustStore
    offices: TrustStore
    citizens: TrustStore
    profil_zaufany: TrustStore
    signatures: TrustStore

    @classmethod
    def on_first_use(cls, root: Path) -> TrustLists:
        """The lists of the trust store folder ``root`` (see the module's docstring)."""
        return cls(
            platforms=TrustStore.on_first_use(root / PLATFORMS),
            offices=TrustStore.on_first_use(root / OFFICES),
            citizens=TrustStore.on_first_use(root / CITIZENS),
            # A region without Profil Zaufany certificates recognises no PZ signer.
            profil_zaufany=TrustStore.union_on_first_use(
                [root / PROFIL_ZAUFANY], may_be_empty=True
            ),
            signatures=TrustStore.union_on_first_use([root / CITIZENS, root / PROFIL_ZAUFANY]),
        )

    def chosen(self, signer: str) -> TrustStore:
        """The list of a kind of signer: ``citizen``, ``office``, ``platform`` or ``any``."""
        lists = {"citizen": self.signatures, "office": self.offices, "platform": self.platforms}
        if signer in lists:
            return lists[signer]
        if signer != "any":
            raise ConfigurationError(f"no trust list for signers of kind {signer!r}")
        return TrustStore(
            [
                authority
                for trust_list in (self.platforms, self.offices, self.signatures)
                for authority in trust_list.authorities_if_any()
            ]
        )


def platform_certificate_path(trust_root: Path, platform: str, configured: str = "") -> Path:
    """Where ``platform``'s pinned certificate is: ``configured``, else the platforms' list."""
    return Path(configured) if configured else trust_root / PLATFORMS / f"{platform}.pem"


def _read_union(directories: list[Path], may_be_empty: bool) -> list[x509.Certificate]:
    authorities = [
        authority
        for directory in directories
        if directory.is_dir() and any(directory.glob("*.pem"))
        for authority in TrustStore.from_directory(directory).authorities
    ]
    if not authorities and not may_be_empty:
        names = ", ".join(str(directory) for directory in directories)
        raise ConfigurationError(f"no trusted certificate in {names}; run: hub keys init")
    return authorities


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
