"""``hub serve`` over real TLS on loopback: HTTPS, and client certificates (mTLS).

Each test starts a real gunicorn in a child process (``hub serve`` itself, or a one-route
echo app under :func:`hub.serving.serve`) with certificates made in the test
(``tls_support.TestPki``), and speaks to it with ``requests`` or the ``ssl`` module,
always verifying the server's certificate against the test's own server CA.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys

import pytest
import requests
from sqlalchemy import select
from tls_support import LOOPBACK, ROOT, TestPki, echo_server, hub_serve

from hub.identity import ClientRegistry
from hub.settings import Settings
from hub.store.migrate import upgrade_database
from hub.store.quarantine import quarantined
from hub.store.repository import Store
from hub.store.tables import MESSAGES


@pytest.fixture
def pki(tmp_path):
    return TestPki.create(tmp_path / "pki")


@pytest.fixture
def hub_environment(tmp_path, region_path):
    settings = Settings(var_dir=tmp_path, region_path=region_path)
    upgrade_database(settings)
    return {
        "HUB_VAR_DIR": str(tmp_path),
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_REGION_PATH": str(region_path),
    }


def tls_environment(pki, *, client_ca=True, required=False):
    environment = {
        "HUB_TLS_CERTIFICATE": str(pki.server.certificate),
        "HUB_TLS_PRIVATE_KEY": str(pki.server.private_key),
    }
    if client_ca:
        environment["HUB_TLS_CLIENT_CA"] = str(pki.client_ca.path)
    if required:
        environment["HUB_TLS_REQUIRE_CLIENT_CERTIFICATE"] = "true"
    return environment


@pytest.fixture
def running(tmp_path):
    servers = []

    def start(starter, environment):
        server = starter(environment, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def handshake_and_get(port, server_ca, client=None):
    """Speak HTTP/1.1 over TLS by hand; the answer's status line, or the ssl error."""
    context = ssl.create_default_context(cafile=str(server_ca))
    if client is not None:
        context.load_cert_chain(client.certificate, client.private_key)
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as connection,
    ):
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # Under TLS 1.3 the server judges the client's certificate after the client's
        # side of the handshake ends: a refusal arrives as an alert here.
        return connection.recv(100).split(b"\r\n", 1)[0]


def test_hub_serve_answers_https_with_the_configured_certificate(pki, hub_environment, running):
    server = running(hub_serve, {**hub_environment, **tls_environment(pki, client_ca=False)})

    response = requests.get(
        f"https://{LOOPBACK}:{server.port}/healthz", verify=pki.server_ca.path, timeout=10
    )

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            f"https://{LOOPBACK}:{server.port}/healthz", verify=pki.stranger_ca.path, timeout=10
        )
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{LOOPBACK}:{server.port}/healthz", timeout=10)


def test_hub_serve_without_tls_settings_answers_plain_http(hub_environment, running):
    server = running(hub_serve, hub_environment)

    response = requests.get(f"http://{LOOPBACK}:{server.port}/healthz", timeout=10)

    assert response.status_code == 200


def test_a_required_client_certificate_lets_an_accepted_client_in_and_no_one_else(
    pki, hub_environment, running
):
    server = running(hub_serve, {**hub_environment, **tls_environment(pki, required=True)})
    known = pki.client_ca.client("eod-warszawa")
    foreign = pki.stranger_ca.client("eod-intruz")

    assert handshake_and_get(server.port, pki.server_ca.path, known) == b"HTTP/1.1 200 OK"
    with pytest.raises(ssl.SSLError, match=r"CERTIFICATE_REQUIRED|certificate required"):
        handshake_and_get(server.port, pki.server_ca.path)
    with pytest.raises(ssl.SSLError, match=r"UNKNOWN_CA|unknown ca"):
        handshake_and_get(server.port, pki.server_ca.path, foreign)


def test_the_verified_client_certificates_fingerprint_reaches_the_request(pki, running):
    server = running(echo_server, tls_environment(pki))
    known = pki.client_ca.client("eod-warszawa")
    url = f"https://{LOOPBACK}:{server.port}/peer"

    with_certificate = requests.get(
        url, verify=pki.server_ca.path, cert=(known.certificate, known.private_key), timeout=10
    )
    without_certificate = requests.get(url, verify=pki.server_ca.path, timeout=10)

    assert with_certificate.json() == {"sha256": known.sha256, "scheme": "https"}
    # Certificates optional (not required): a caller without one gets through, as no one.
    assert without_certificate.json() == {"sha256": None, "scheme": "https"}


def test_plain_http_carries_no_client_certificate(running):
    server = running(echo_server, {})

    response = requests.get(f"http://{LOOPBACK}:{server.port}/peer", timeout=10)

    assert response.json() == {"sha256": None, "scheme": "http"}


def test_hub_serve_refuses_to_start_with_a_key_that_is_not_the_certificates(pki, hub_environment):
    other = pki.server_ca.server("other")
    environment = {
        **os.environ,
        **hub_environment,
        **tls_environment(pki, client_ca=False),
        "HUB_TLS_PRIVATE_KEY": str(other.private_key),
    }

    finished = subprocess.run(
        [sys.executable, "-m", "hub", "serve"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 2
    assert "tls_certificate" in finished.stderr
    assert "cannot be used" in finished.stderr


PISMO = b'<w:Pismo xmlns:w="http://crd.gov.pl/wzor/2013/12/12/1410/"><w:T>wniosek</w:T></w:Pismo>'


def post_document(server, pki, client_certificate, key="pismo-1"):
    return requests.post(
        f"https://{LOOPBACK}:{server.port}/api/documents",
        data=PISMO,
        headers={"Content-Type": "application/xml", "Idempotency-Key": key},
        verify=pki.server_ca.path,
        cert=(client_certificate.certificate, client_certificate.private_key),
        timeout=10,
    )


def test_an_mtls_call_passes_as_the_client_of_its_certificate_and_an_unknown_one_is_refused(
    pki, hub_environment, running
):
    known = pki.client_ca.client("eod-warszawa")
    unknown = pki.client_ca.client("eod-nieznany")  # the accepted CA's, but no client's
    store = Store.from_url(hub_environment["HUB_DATABASE_URL"])
    ClientRegistry(store).add(
        "eod-146501_1", "146501_1", sources=["eod"], certificate_sha256=known.sha256
    )
    server = running(hub_serve, {**hub_environment, **tls_environment(pki, required=True)})

    accepted = post_document(server, pki, known)
    refused = post_document(server, pki, unknown, key="pismo-2")

    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 401
    assert refused.json()["type"] == "urn:hub:problem:unauthorized"
    with store.reading() as connection:
        messages = connection.execute(select(MESSAGES.c.source, MESSAGES.c.destination)).all()
    assert messages == [("eod", "146501_1")]  # the office its client acts for
    assert [row.code for row in quarantined(store)] == ["unauthorized"]
    with pytest.raises(ssl.SSLError, match=r"CERTIFICATE_REQUIRED|certificate required"):
        handshake_and_get(server.port, pki.server_ca.path)
    store.close()
