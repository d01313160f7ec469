"""Logins throttled in the store, sessions that logout ends, cookies and security headers."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import structlog.testing
from dashboard_support import PASSWORDS, csrf_token, log_in, with_accounts
from prometheus_client.parser import text_string_to_metric_families

import monitoring.auth
from hub.store.repository import utcnow
from hub.web import create_app
from monitoring.logins import DashboardSessions

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@pytest.fixture
def app(settings, store):
    return create_app(with_accounts(settings, store), store)


def try_login(client, name, password, address="192.0.2.10"):
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": address},
    )


def login_failures(client):
    text = client.get("/metrics").get_data(as_text=True)
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "hub_dashboard_login_failures_total"
    }


# ---- throttling ----------------------------------------------------------------------


def test_the_sixth_login_after_five_failures_is_429_even_with_the_right_password(app):
    client = app.test_client()
    for _ in range(5):
        assert try_login(client, "vera", "wrong").status_code == 401

    refused = try_login(client, "vera", PASSWORDS["vera"])
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 30
    assert client.get("/dashboard/").status_code == 302
    assert login_failures(client) == {"wrong": 5.0, "throttled": 1.0}


def test_the_throttle_holds_across_worker_processes_since_it_lives_in_the_store(settings, store):
    # Two apps over one database stand for two gunicorn workers.
    first = create_app(with_accounts(settings, store), store).test_client()
    second = create_app(with_accounts(settings, store), store).test_client()
    for client in [first, second, first, second, first]:
        try_login(client, "otto", "wrong")
    assert try_login(second, "otto", PASSWORDS["otto"]).status_code == 429


def test_failures_from_one_address_throttle_every_account_tried_from_it(app):
    client = app.test_client()
    for name in ["vera", "otto", "ada", "nobody", "eve"]:
        try_login(client, name, "wrong", address="198.51.100.7")
    assert try_login(client, "otto", PASSWORDS["otto"], address="198.51.100.7").status_code == 429
    # The account itself failed once only: from another address it logs in.
    assert try_login(client, "otto", PASSWORDS["otto"], address="203.0.113.5").status_code == 302


def test_the_backoff_passes_and_grows_with_each_further_failure(settings, store):
    quick = with_accounts(settings, store).replace(dashboard_login_backoff_s=0.5)
    app = create_app(quick, store)
    client = app.test_client()
    for _ in range(5):
        try_login(client, "ada", "wrong")
    assert try_login(client, "ada", PASSWORDS["ada"]).status_code == 429
    time.sleep(0.6)
    assert try_login(client, "ada", "wrong again").status_code == 401
    throttle = app.config["HUB_LOGIN_THROTTLE"]
    assert throttle.backoff_s(6) == 2 * throttle.backoff_s(5)
    assert try_login(client, "ada", PASSWORDS["ada"]).status_code == 429
    time.sleep(1.1)
    assert try_login(client, "ada", PASSWORDS["ada"]).status_code == 302


def test_a_failed_login_is_logged_without_the_password(app, monkeypatch):
    # Captured at structlog itself, through a logger not cached yet: where the module's
    # own logger writes depends on how an earlier test of the session configured it.
    monkeypatch.setattr(monitoring.auth, "log", structlog.get_logger("monitoring.auth"))
    with structlog.testing.capture_logs() as logged:
        try_login(app.test_client(), "vera", "my-secret-guess")
    failures = [entry for entry in logged if entry["event"] == "login_failed"]
    assert failures
    assert "my-secret-guess" not in repr(logged)


# ---- sessions ------------------------------------------------------------------------


def session_cookie(client):
    for name in ["hub-session", "__Host-hub-session"]:
        cookie = client.get_cookie(name)
        if cookie is not None:
            return cookie
    raise AssertionError("no session cookie")


def test_logout_revokes_the_session_so_a_copied_cookie_is_refused(app):
    client = app.test_client()
    token = log_in(client, "otto")
    copied = session_cookie(client).value

    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("hub-session", copied)
    assert thief.get("/dashboard/").status_code == 302
    assert thief.get("/api/overview").status_code == 401


def test_a_session_ends_after_30_idle_minutes_and_after_8_hours(settings, store):
    sessions = DashboardSessions(store, settings)
    start = utcnow()
    token = sessions.open("vera", now=start)
    assert sessions.account_of(token, now=start + timedelta(minutes=29)) == "vera"
    # Each request within the idle timeout keeps the session alive, up to its lifetime.
    for step in range(1, 24):
        moment = start + timedelta(minutes=20 * step)  # the last at 7 h 40 min
        assert sessions.account_of(token, now=moment) == "vera"
    assert sessions.account_of(token, now=start + timedelta(hours=8)) is None

    idle = sessions.open("vera", now=start)
    assert sessions.account_of(idle, now=start + timedelta(minutes=31)) is None


def test_over_plain_http_the_cookie_is_httponly_lax_and_lives_8_hours(app):
    client = app.test_client()
    response = try_login(client, "vera", PASSWORDS["vera"])
    cookie = next(v for v in response.headers.getlist("Set-Cookie") if "session=" in v)
    assert cookie.startswith("hub-session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert "Expires=" in cookie


@pytest.mark.parametrize("setting", ["auto", "always"])
def test_over_tls_the_cookie_is_secure_and_host_prefixed(settings, store, setting):
    app = create_app(with_accounts(settings, store).replace(dashboard_cookie_secure=setting), store)
    client = app.test_client()
    base = "https://localhost" if setting == "auto" else "http://localhost"
    token_page = client.get("/login", base_url=base).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', token_page).group(1)
    response = client.post(
        "/login",
        base_url=base,
        data={"name": "vera", "password": PASSWORDS["vera"], "csrf_token": token},
        # Over HTTPS Flask-WTF also wants the same-origin Referer a browser sends.
        headers={"Referer": f"{base}/login"},
    )
    assert response.status_code == 302
    cookie = next(v for v in response.headers.getlist("Set-Cookie") if "session=" in v)
    assert cookie.startswith("__Host-hub-session=")
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie
    assert client.get("/dashboard/", base_url=base).status_code == 200


# ---- headers -------------------------------------------------------------------------


def test_every_answer_sends_the_security_headers(app):
    client = app.test_client()
    answers = [
        client.get("/login"),
        client.get("/healthz"),
        client.get("/metrics"),
        client.get("/api/overview"),
        client.get("/no-such-page"),
        client.get("/dashboard/static/dashboard.css"),
    ]
    log_in(client, "otto")
    answers += [client.get("/dashboard/"), client.get("/dashboard/dead")]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.request.path, name)


def test_no_page_has_inline_script_or_style_that_the_policy_would_block(app, store):
    client = app.test_client()
    pages = [client.get("/login").get_data(as_text=True)]
    log_in(client, "otto")
    for path in [
        "/dashboard/",
        "/dashboard/dead",
        "/dashboard/alerts",
        "/dashboard/actions",
        "/dashboard/receipts",
        "/dashboard/quarantine",
        "/dashboard/trace?q=x",
    ]:
        pages.append(client.get(path).get_data(as_text=True))
    for html in pages:
        assert "<style" not in html
        assert " style=" not in html
        assert not re.search(r"\son[a-z]+=", html)
        for script in re.findall(r"<script[^>]*>", html):
            assert "src=" in script or 'type="application/json"' in script, script
