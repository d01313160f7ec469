"""The TLS set-up ``hub serve`` derives from its settings, without a socket."""

from __future__ import annotations

import ssl

import pytest

from hub.errors import ConfigurationError
from hub.serving import server_options
from hub.settings import Settings
from hub.tls import TlsSetup, peer_certificate_sha256, tls_setup


def test_without_a_certificate_hub_serve_speaks_plain_http():
    settings = Settings.load(environ={})

    assert tls_setup(settings) is None
    assert "certfile" not in server_options("127.0.0.1", 8080, 2, 4, None)


def test_tls_settings_are_read_from_the_environment_with_booleans_as_words(tmp_path):
    settings = Settings.load(
        environ={
            "HUB_TLS_CERTIFICATE": "/etc/hub/hub.pem",
            "HUB_TLS_PRIVATE_KEY": "/etc/hub/hub.key",
            "HUB_TLS_CLIENT_CA": "/etc/hub/clients-ca.pem",
            "HUB_TLS_REQUIRE_CLIENT_CERTIFICATE": "yes",
        }
    )

    assert str(settings.tls_client_ca) == "/etc/hub/clients-ca.pem"
    assert settings.tls_require_client_certificate is True
    with pytest.raises(ConfigurationError, match="tls_require_client_certificate"):
        Settings.load(environ={"HUB_TLS_REQUIRE_CLIENT_CERTIFICATE": "perhaps"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HUB_TLS_CERTIFICATE": "hub.pem"}, "set together"),
        ({"HUB_TLS_PRIVATE_KEY": "hub.key"}, "set together"),
        ({"HUB_TLS_CLIENT_CA": "ca.pem"}, "tls_client_ca needs"),
        ({"HUB_TLS_REQUIRE_CLIENT_CERTIFICATE": "true"}, "needs tls_client_ca"),
    ],
)
def test_incomplete_tls_settings_stop_hub_serve_with_the_setting_named(environ, message):
    with pytest.raises(ConfigurationError, match=message):
        tls_setup(Settings.load(environ=environ))


def test_a_missing_certificate_file_stops_hub_serve_at_start(tmp_path):
    settings = Settings.load(
        environ={
            "HUB_TLS_CERTIFICATE": str(tmp_path / "absent.pem"),
            "HUB_TLS_PRIVATE_KEY": str(tmp_path / "absent.key"),
        }
    )

    with pytest.raises(ConfigurationError, match="cannot be used"):
        tls_setup(settings)


@pytest.mark.parametrize(
    ("client_ca", "required", "expected"),
    [
        (None, False, ssl.CERT_NONE),
        ("clients-ca.pem", False, ssl.CERT_OPTIONAL),
        ("clients-ca.pem", True, ssl.CERT_REQUIRED),
    ],
)
def test_gunicorn_is_told_the_files_and_whether_client_certificates_are_asked_or_required(
    tmp_path, client_ca, required, expected
):
    setup = TlsSetup(
        certificate=tmp_path / "hub.pem",
        private_key=tmp_path / "hub.key",
        client_ca=tmp_path / client_ca if client_ca else None,
        require_client_certificate=required,
    )

    options = server_options("0.0.0.0", 8443, 2, 4, setup)

    assert options["certfile"] == str(tmp_path / "hub.pem")
    assert options["keyfile"] == str(tmp_path / "hub.key")
    assert options["cert_reqs"] == expected
    assert options.get("ca_certs") == (str(tmp_path / client_ca) if client_ca else None)
    assert options["bind"] == "0.0.0.0:8443"


@pytest.mark.parametrize("connection", [None, object(), "socket"])
def test_a_request_without_a_tls_socket_carries_no_client_certificate(connection):
    environ = {} if connection is None else {"gunicorn.socket": connection}

    assert peer_certificate_sha256(environ) is None
