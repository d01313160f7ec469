"""Who may see and do what on the dashboard: people with roles, from the settings.

Roles rank ``viewer < operator < admin``. Viewers see figures and traces with personal
data masked; operators also replay dead letters and pause or resume endpoints; admins
see personal data unmasked. People log in with a password (Flask-Login keeps the
session); machines reading the JSON API send ``Authorization: Bearer <token>``.

``dashboard_users`` holds ``name:role:hash`` entries (the hash as ``hub dashboard-user``
prints it, werkzeug's scrypt), ``dashboard_tokens`` holds ``name:role:sha256hex``
entries: a token is long and random, so a fast hash is enough, and a bearer request
then costs no deliberately slow password hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    Flask,
    Request,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from hub.errors import ConfigurationError
from hub.settings import Settings
from hub.web import problem

blueprint = Blueprint("auth", __name__)
ENTRY_SEPARATORS = re.compile(r"[,\s]+")
# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


class Role(IntEnum):
    """What a person may do; a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text`` (viewer, operator, admin)."""
        try:
            return cls[text.upper()]
        except KeyError as exc:
            raise ConfigurationError(
                f"dashboard role must be viewer, operator or admin, not {text!r}"
            ) from exc


@dataclass(frozen=True, slots=True)
class Account:
    """One person or machine allowed on the dashboard."""

    name: str
    role: Role
    secret_hash: str

    # Flask-Login's user protocol.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session."""
        return self.name

    def may(self, role: Role) -> bool:
        """Whether this account holds ``role`` or a higher one."""
        return self.role >= role

    @property
    def can_act(self) -> bool:
        """Whether this account may replay, pause and resume (operators and admins)."""
        return self.may(Role.OPERATOR)

    @property
    def sees_personal_data(self) -> bool:
        """Viewers see PESEL numbers, names and addresses masked; operators need them to act."""
        return self.role >= Role.OPERATOR


def parse_accounts(text: str) -> dict[str, Account]:
    """``name:role:hash`` entries, separated by commas or whitespace, keyed by name.

    Raises:
        ConfigurationError: an entry lacks a part or names an unknown role.
    """
    accounts: dict[str, Account] = {}
    for entry in filter(None, ENTRY_SEPARATORS.split(text.strip())):
        name, _, rest = entry.partition(":")
        role, _, secret_hash = rest.partition(":")
        if not name or not secret_hash:
            raise ConfigurationError(
                f"dashboard entry {name or entry[:20]!r} must read name:role:hash"
            )
        accounts[name] = Account(name, Role.parse(role), secret_hash)
    return accounts


def user_entry(name: str, role: str, password: str) -> str:
    """The ``dashboard_users`` entry for a person, with the password hashed (scrypt)."""
    Role.parse(role)
    return f"{name}:{role}:{generate_password_hash(password, method='scrypt')}"


def token_entry(name: str, role: str, token: str) -> str:
    """The ``dashboard_tokens`` entry for a machine's bearer token."""
    Role.parse(role)
    return f"{name}:{role}:{hashlib.sha256(token.encode()).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Accounts:
    """The people and the tokens of one app, parsed once from the settings."""

    people: Mapping[str, Account]
    tokens: Mapping[str, Account]

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts:
        """Parse ``dashboard_users`` and ``dashboard_tokens``."""
        return cls(
            parse_accounts(settings.dashboard_users), parse_accounts(settings.dashboard_tokens)
        )

    def check_password(self, name: str, password: str) -> Account | None:
        """The person if ``password`` is theirs, else None."""
        account = self.people.get(name)
        matches = check_password_hash(account.secret_hash if account else _DUMMY_HASH, password)
        return account if account is not None and matches else None

    def check_token(self, token: str) -> Account | None:
        """The machine whose token this is, else None (compared in constant time)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        for account in self.tokens.values():
            if hmac.compare_digest(account.secret_hash, digest):
                return account
        return None


def init_auth(app: Flask, settings: Settings) -> None:
    """Attach Flask-Login with the settings' accounts to ``app``."""
    accounts = Accounts.from_settings(settings)
    app.config["HUB_ACCOUNTS"] = accounts
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.user_loader(accounts.people.get)
    manager.request_loader(bearer_account)
    app.register_blueprint(blueprint)


def _accounts() -> Accounts:
    return cast(Accounts, current_app.config["HUB_ACCOUNTS"])


def bearer_account(incoming: Request) -> Account | None:
    """The machine whose bearer token the request carries, if the token is valid."""
    scheme, _, token = incoming.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return _accounts().check_token(token.strip())


def current_account() -> Account | None:
    """The logged-in person or the bearer machine of this request, if any."""
    user = current_user._get_current_object()
    return user if isinstance(user, Account) else None


def page_requires(role: Role) -> Callable[[View], View]:
    """A page for ``role`` and above: others go to the login page, or get 403."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            account = current_account()
            if account is None:
                return redirect(url_for("auth.login", next=request.full_path))
            if not account.may(role):
                return render_template("forbidden.html", needed=role.name.lower()), 403
            return view(*args, **kwargs)

        return cast(View, guarded)

    return decorate


def api_requires(role: Role) -> Callable[[View], View]:
    """A JSON route for ``role`` and above: 401 without login or token, 403 below the role."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            account = current_account()
            if account is None:
                response, status = problem(
                    401, "unauthenticated", "log in to the dashboard or send a bearer token"
                )
                response.headers["WWW-Authenticate"] = 'Bearer realm="hub"'
                return response, status
            if not account.may(role):
                return problem(403, "forbidden", f"this needs the {role.name.lower()} role")
            return view(*args, **kwargs)

        return cast(View, guarded)

    return decorate


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; a right password starts a session and goes where the person wanted."""
    error = False
    if request.method == "POST":
        account = _accounts().check_password(
            request.form.get("name", ""), request.form.get("password", "")
        )
        if account is not None:
            login_user(account)
            return redirect(_safe_next(request.args.get("next")))
        error = True
    return render_template("login.html", error=error), 401 if error else 200


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session."""
    logout_user()
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str:
    # Only a path on this site: an open redirect would hand a phishing page the session's trust.
    if target and target.startswith("/") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("dashboard.overview")


@click.command("dashboard-user")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "admin"]),
    default="viewer",
    show_default=True,
)
@click.password_option(help="The person's password (asked twice if not given).")
def dashboard_user_command(name: str, role: str, password: str) -> None:
    """Print a dashboard_users entry for NAME with the password hashed; add it to the settings."""
    click.echo(user_entry(name, role, password))
