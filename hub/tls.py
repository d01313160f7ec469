"""TLS and mutual TLS for ``hub serve``: what gunicorn is told, and who the peer is.

gunicorn terminates TLS itself: each gthread worker wraps an accepted connection in an
``ssl.SSLSocket`` made from the certificate, key and client CA given here, and hands
that socket to the application as ``environ["gunicorn.socket"]``. A client certificate
the handshake accepted is therefore one the client CA issued; the hub names it by the
SHA-256 of its DER, the fingerprint the client registry maps to a client.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import ConfigurationError
from hub.settings import Settings

SOCKET_KEY = "gunicorn.socket"


@dataclass(frozen=True, slots=True)
class TlsSetup:
    """How ``hub serve`` speaks TLS: its certificate and key, and whose clients it accepts."""

    certificate: Path
    private_key: Path
    client_ca: Path | None = None
    require_client_certificate: bool = False

    @property
    def client_certificates(self) -> ssl.VerifyMode:
        """Whether the handshake asks for a client certificate, and whether it insists."""
        if self.client_ca is None:
            return ssl.CERT_NONE
        return ssl.CERT_REQUIRED if self.require_client_certificate else ssl.CERT_OPTIONAL

    def gunicorn_options(self) -> dict[str, Any]:
        """gunicorn's SSL settings for this set-up (``certfile``, ``keyfile``, ...)."""
        options: dict[str, Any] = {
            "certfile": str(self.certificate),
            "keyfile": str(self.private_key),
            "cert_reqs": self.client_certificates,
        }
        if self.client_ca is not None:
            options["ca_certs"] = str(self.client_ca)
        return options

    def check(self) -> None:
        """Build the server's TLS context once, so a bad file stops ``hub serve`` at start.

        gunicorn would otherwise load the files per connection, and a wrong key would
        show only as every handshake failing.

        Raises:
            ConfigurationError: a file is missing or unreadable, the key does not match
                the certificate, or the client CA file holds no certificate.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.certificate, self.private_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"tls_certificate {self.certificate} and tls_private_key {self.private_key} "
                f"cannot be used: {exc}"
            ) from exc
        if self.client_ca is None:
            return
        try:
            context.load_verify_locations(cafile=self.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"tls_client_ca {self.client_ca} cannot be used: {exc}"
            ) from exc


def tls_setup(settings: Settings) -> TlsSetup | None:
    """The TLS set-up the settings ask for, checked; None serves plain HTTP.

    Args:
        settings: ``tls_certificate``, ``tls_private_key``, ``tls_client_ca`` and
            ``tls_require_client_certificate`` are read.

    Returns:
        The checked set-up, or None when no certificate is configured.

    Raises:
        ConfigurationError: the settings are incomplete or contradictory (a key without a
            certificate, a client CA without TLS, client certificates required without a
            client CA), or a file cannot be used.
    """
    _refuse_incomplete(settings)
    if settings.tls_certificate is None or settings.tls_private_key is None:
        return None
    setup = TlsSetup(
        certificate=settings.tls_certificate,
        private_key=settings.tls_private_key,
        client_ca=settings.tls_client_ca,
        require_client_certificate=settings.tls_require_client_certificate,
    )
    setup.check()
    return setup


def _refuse_incomplete(settings: Settings) -> None:
    if (settings.tls_certificate is None) != (settings.tls_private_key is None):
        raise ConfigurationError("tls_certificate and tls_private_key are set together")
    if settings.tls_client_ca is not None and settings.tls_certificate is None:
        raise ConfigurationError("tls_client_ca needs tls_certificate and tls_private_key")
    if settings.tls_require_client_certificate and settings.tls_client_ca is None:
        raise ConfigurationError(
            "tls_require_client_certificate needs tls_client_ca, the CA whose clients are accepted"
        )


def peer_certificate_sha256(environ: Mapping[str, Any]) -> str | None:
    """The hex SHA-256 of the DER of the client certificate the TLS handshake verified.

    Args:
        environ: the WSGI environ of the request (``request.environ``).

    Returns:
        The fingerprint, or None on plain HTTP, when the client sent no certificate, or
        when the server did not ask for one (then nothing about it was verified).
    """
    connection = environ.get(SOCKET_KEY)
    if not isinstance(connection, ssl.SSLSocket):
        return None
    if connection.context.verify_mode == ssl.CERT_NONE:
        return None
    der = connection.getpeercert(binary_form=True)
    if not der:
        return None
    return hashlib.sha256(der).hexdigest()
