"""Accounts for the dashboard's tests: a viewer, an operator, an admin and a bearer token."""

from __future__ import annotations

from monitoring.auth import token_entry, user_entry

PASSWORDS = {"vera": "viewer-pass", "otto": "operator-pass", "ada": "admin-pass"}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
# Hashing with scrypt takes a while; the entries are made once per test session.
USERS = ",".join(user_entry(name, ROLES[name], password) for name, password in PASSWORDS.items())
TOKENS = ",".join(
    [token_entry("grafana", "viewer", VIEWER_TOKEN), token_entry("robot", "operator", OPERATOR_TOKEN)]
)


def with_accounts(settings):
    """``settings`` with the test people and tokens."""
    return settings.replace(
        dashboard_users=USERS, dashboard_tokens=TOKENS, dashboard_secret_key="test-secret"
    )


def bearer(token=VIEWER_TOKEN):
    return {"Authorization": f"Bearer {token}"}


def csrf_token(client):
    """The CSRF token of the client's session, taken from the login form as a browser would."""
    page = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def log_in(client, name):
    token = csrf_token(client)
    response = client.post(
        "/login", data={"name": name, "password": PASSWORDS[name], "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client)
