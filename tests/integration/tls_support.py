"""A test PKI made with the cryptography package, and a real gunicorn serving over it.

The certificates are made here, independently of the hub's own keystore code: a CA for
the server, a CA whose clients the server accepts, a server certificate for 127.0.0.1,
client certificates, and a stranger's CA. ``run_echo_server`` (``python -m``-able) serves
a one-route Flask app under :func:`hub.serving.serve` that answers what
:func:`hub.tls.peer_certificate_sha256` found, so a test sees the fingerprint reach a
request through gunicorn's own TLS.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flask import Flask, jsonify, request

from hub.serving import serve
from hub.settings import Settings
from hub.tls import peer_certificate_sha256, tls_setup

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, written as PEM files."""

    certificate: Path
    private_key: Path
    der: bytes

    @property
    def sha256(self) -> str:
        """The fingerprint, computed here from the DER (not by the hub)."""
        return hashlib.sha256(self.der).hexdigest()


class TestAuthority:
    """A CA that issues server and client certificates into a folder."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.path = folder / f"{name}.pem"
        self.path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def server(self, name: str = "hub") -> Issued:
        """A server certificate for 127.0.0.1."""
        return self._issue(
            name,
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
        )

    def client(self, name: str) -> Issued:
        """A client certificate (TLS client authentication) for ``name``."""
        return self._issue(name, ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def _issue(
        self, name: str, usage: x509.ObjectIdentifier, names: x509.SubjectAlternativeName | None
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if names is not None:
            builder = builder.add_extension(names, critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        certificate_path = self.folder / f"{self.name}-{name}.pem"
        key_path = self.folder / f"{self.name}-{name}.key"
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Issued(
            certificate_path, key_path, certificate.public_bytes(serialization.Encoding.DER)
        )


@dataclass(frozen=True)
class TestPki:
    """The server's CA and certificate, the CA of accepted clients, and a stranger's CA."""

    __test__ = False

    server_ca: TestAuthority
    server: Issued
    client_ca: TestAuthority
    stranger_ca: TestAuthority

    @classmethod
    def create(cls, folder: Path) -> TestPki:
        """Make every authority and the server certificate in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        server_ca = TestAuthority(folder, "server-ca")
        return cls(
            server_ca=server_ca,
            server=server_ca.server(),
            client_ca=TestAuthority(folder, "client-ca"),
            stranger_ca=TestAuthority(folder, "stranger-ca"),
        )


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """A child process serving on a port, stopped with SIGTERM (gunicorn's own stop)."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.port = int(env["HUB_HTTP_PORT"])
        self.log = log
        with log.open("wb") as stream:
            self.process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT
            )

    def wait_listening(self, timeout_s: float = 30.0) -> None:
        """Wait until the port takes connections; fail with the child's log if it died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()}")
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not listen in time: {self.log.read_text()}")

    def stop(self) -> None:
        """SIGTERM, then wait for gunicorn to stop its workers."""
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def hub_serve(env_settings: dict[str, str], log: Path) -> ServerProcess:
    """``hub serve --workers 1`` in a child process with these ``HUB_*`` settings."""
    env = {**os.environ, "HUB_HTTP_PORT": str(free_port()), **env_settings}
    command = [sys.executable, "-m", "hub", "serve", "--workers", "1"]
    server = ServerProcess(command, env, log)
    server.wait_listening()
    return server


def echo_server(env_settings: dict[str, str], log: Path) -> ServerProcess:
    """The one-route fingerprint echo under gunicorn, TLS as ``HUB_TLS_*`` say."""
    env = {**os.environ, "HUB_HTTP_PORT": str(free_port()), **env_settings}
    command = [sys.executable, str(Path(__file__)), "--port", env["HUB_HTTP_PORT"]]
    server = ServerProcess(command, env, log)
    server.wait_listening()
    return server


def run_echo_server(port: int) -> None:
    """Serve ``GET /peer`` (the request's client certificate fingerprint) until SIGTERM."""
    app = Flask("echo")

    @app.get("/peer")
    def peer() -> object:
        return jsonify(
            {
                "sha256": peer_certificate_sha256(request.environ),
                "scheme": request.scheme,
            }
        )

    serve(app, LOOPBACK, port, workers=1, threads=2, tls=tls_setup(Settings.load()))


if __name__ == "__main__":
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--port", type=int, required=True)
    run_echo_server(arguments.parse_args().port)
