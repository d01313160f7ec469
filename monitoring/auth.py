"""Who may see and do what on the dashboard: people with roles, from the settings.

Roles rank ``viewer < operator < admin``. Viewers see figures and traces with personal
data masked; operators also replay dead letters and pause or resume endpoints; admins
see personal data unmasked. A viewer or an operator may be scoped to one office: they
see and act on that office's messages, endpoints and dead letters only (admins are
region-wide). People log in with a password; machines reading the JSON API send
``Authorization: Bearer <token>``.

``dashboard_users`` holds ``name:role:hash`` entries, or ``name:role@office:hash`` for
a person of one office (the line ``hub dashboard-user`` prints, the password hashed with
werkzeug's scrypt). Machines are clients of the hub's one client registry
(``hub client add NAME --office ID|region --api monitoring --role viewer``): a client
acting for an office is scoped to it as a person of that office is, one acting for the
region sees every office.

A login starts a session kept in the store (:mod:`monitoring.logins`): it lasts
``dashboard_session_lifetime_s``, ends after ``dashboard_session_idle_s`` without a
request, and logout revokes it on the server, so a copied cookie is refused afterwards.
Failed logins are throttled per account and per address, across every worker.
"""

from __future__ import annotations

import math
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
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from hub.errors import ConfigurationError
from hub.identity import MONITORING
from hub.logging import get_logger
from hub.region import load_region
from hub.settings import Settings
from hub.store.repository import Store
from hub.web import bearer_token, client_registry, problem
from monitoring.logins import DashboardSessions, LoginThrottle

blueprint = Blueprint("auth", __name__)
log = get_logger(__name__)
# Browsers keep a __Host- cookie only if it is Secure, for the whole site and no domain:
# it cannot be planted by a sibling subdomain or over plain HTTP. On plain HTTP (the demo
# on loopback) the plain name is the only one a browser would keep.
SECURE_COOKIE = "__Host-hub-session"
PLAIN_COOKIE = "hub-session"
SESSION_ID = "hub_session_id"
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
    # The office this account sees and acts for; None for the whole region.
    office: str | None = None

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
    def region_wide(self) -> bool:
        """Whether this account sees every office (not scoped to one)."""
        return self.office is None

    @property
    def sees_personal_data(self) -> bool:
        """Viewers see PESEL numbers, names and addresses masked; operators need them to act."""
        return self.role >= Role.OPERATOR


def parse_accounts(text: str) -> dict[str, Account]:
    """``name:role[@office]:hash`` entries, separated by commas or whitespace, keyed by name.

    Raises:
        ConfigurationError: an entry lacks a part, names an unknown role, or scopes an
            admin to an office.
    """
    accounts: dict[str, Account] = {}
    for entry in filter(None, ENTRY_SEPARATORS.split(text.strip())):
        name, _, rest = entry.partition(":")
        scoped_role, _, secret_hash = rest.partition(":")
        if not name or not secret_hash:
            raise ConfigurationError(
                f"dashboard entry {name or entry[:20]!r} must read name:role:hash"
            )
        role, office = parse_scoped_role(scoped_role)
        accounts[name] = Account(name, role, secret_hash, office)
    return accounts


def parse_scoped_role(text: str) -> tuple[Role, str | None]:
    """``operator`` or ``operator@146501_1``: the role, and the office it is scoped to.

    Raises:
        ConfigurationError: the role is unknown, the office empty, or an admin is scoped.
    """
    role_name, at, office = text.partition("@")
    role = Role.parse(role_name)
    if at and not office:
        raise ConfigurationError(f"dashboard role {text!r} names no office after its @")
    if office and role is Role.ADMIN:
        raise ConfigurationError("an admin sees the whole region; scope only viewers and operators")
    return role, office or None


def user_entry(name: str, role: str, password: str, office: str | None = None) -> str:
    """The ``dashboard_users`` entry for a person, with the password hashed (scrypt)."""
    scoped = _scoped(role, office)
    return f"{name}:{scoped}:{generate_password_hash(password, method='scrypt')}"


def _scoped(role: str, office: str | None) -> str:
    scoped = f"{role}@{office}" if office else role
    parse_scoped_role(scoped)
    return scoped


@dataclass(frozen=True, slots=True)
class Accounts:
    """The people of one app, parsed once from the settings."""

    people: Mapping[str, Account]

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts:
        """Parse ``dashboard_users``."""
        return cls(parse_accounts(settings.dashboard_users))

    def check_password(self, name: str, password: str) -> Account | None:
        """The person if ``password`` is theirs, else None."""
        account = self.people.get(name)
        matches = check_password_hash(account.secret_hash if account else _DUMMY_HASH, password)
        return account if account is not None and matches else None


class HubSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie Secure and ``__Host-`` named over TLS.

    Flask names and flags the cookie once per app; the hub decides per request, because
    the same app answers over TLS and, for the demo and tests, over plain HTTP on loopback.
    """

    def __init__(self, always_secure: bool) -> None:
        self._always_secure = always_secure

    def get_cookie_name(self, app: Flask) -> str:
        """``__Host-hub-session`` when the cookie is Secure, else ``hub-session``."""
        return SECURE_COOKIE if self._secure() else PLAIN_COOKIE

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when the request came over TLS, or always if the settings say so."""
        return self._secure()

    def _secure(self) -> bool:
        return self._always_secure or (has_request_context() and request.is_secure)


def init_auth(app: Flask, settings: Settings) -> None:
    """Attach Flask-Login with the settings' accounts and store-kept sessions to ``app``."""
    accounts = Accounts.from_settings(settings)
    store: Store = app.config["HUB_STORE"]
    app.config["HUB_ACCOUNTS"] = accounts
    app.config["HUB_SESSIONS"] = DashboardSessions(store, settings)
    app.config["HUB_LOGIN_THROTTLE"] = LoginThrottle(store, settings)
    app.config["PERMANENT_SESSION_LIFETIME"] = settings.dashboard_session_lifetime_s
    app.session_interface = HubSessionInterface(settings.dashboard_cookie_secure == "always")
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.user_loader(_person_of_session)
    manager.request_loader(bearer_account)
    app.register_blueprint(blueprint)


def _person_of_session(name: str) -> Account | None:
    # The signed cookie names the person; the store says whether the session still lives.
    session_id = session.get(SESSION_ID)
    if not isinstance(session_id, str) or _sessions().account_of(session_id) != name:
        session.clear()
        return None
    return _accounts().people.get(name)


def _sessions() -> DashboardSessions:
    return cast(DashboardSessions, current_app.config["HUB_SESSIONS"])


def _throttle() -> LoginThrottle:
    return cast(LoginThrottle, current_app.config["HUB_LOGIN_THROTTLE"])


def _accounts() -> Accounts:
    return cast(Accounts, current_app.config["HUB_ACCOUNTS"])


def bearer_account(incoming: Request) -> Account | None:
    """The client whose bearer token the request carries, if it may call the monitoring API.

    Only a bearer token counts here, never a client certificate alone: a browser offers
    its certificate by itself, and the CSRF check trusts requests that carry a token.
    """
    token = bearer_token(incoming)
    if not token:
        return None
    client = client_registry().authenticate(token)
    if client is None or not client.may_call(MONITORING) or client.role is None:
        return None
    return Account(client.name, Role.parse(client.role), secret_hash="", office=client.office)


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
    """The login form; a right password starts a session and goes where the person wanted.

    After too many failures of the account or from the address, every try is refused
    with 429 and ``Retry-After`` until the backoff has passed, the right password too:
    otherwise the refusal would tell a guesser when they guessed right.
    """
    if request.method != "POST":
        return render_template("login.html", error=None)
    name = request.form.get("name", "")[:100]
    address = request.remote_addr or "unknown"
    keys = [f"account:{name}", f"address:{address}"]
    wait_s = _throttle().wait_s(keys)
    if wait_s > 0:
        _throttle().record_throttled()
        log.warning("login_throttled", account=name, address=address, retry_after_s=wait_s)
        response = current_app.make_response(
            (render_template("login.html", error="login_throttled"), 429)
        )
        response.headers["Retry-After"] = str(math.ceil(wait_s))
        return response
    account = _accounts().check_password(name, request.form.get("password", ""))
    if account is None:
        _throttle().record_failure(keys)
        log.warning("login_failed", account=name, address=address)
        return render_template("login.html", error="login_failed"), 401
    _throttle().clear(keys[0])
    _start_session(account)
    log.info("login_succeeded", account=name, address=address)
    return redirect(_safe_next(request.args.get("next")))


def _start_session(account: Account) -> None:
    # A fresh session at login: nothing set before it (by whoever held the browser) carries over.
    language = session.get("lang")
    session.clear()
    if language is not None:
        session["lang"] = language
    session[SESSION_ID] = _sessions().open(account.name)
    session.permanent = True
    login_user(account)


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session here and in the store, so no copy of its cookie opens it again."""
    session_id = session.get(SESSION_ID)
    if isinstance(session_id, str):
        _sessions().revoke(session_id)
    logout_user()
    session.clear()
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
@click.option(
    "--office",
    default=None,
    help="Scope a viewer or operator to this office of the region (e.g. 146501_1).",
)
@click.password_option(help="The person's password (asked twice if not given).")
@click.pass_obj
def dashboard_user_command(
    settings: Settings, name: str, role: str, office: str | None, password: str
) -> None:
    """Print a dashboard_users entry for NAME with the password hashed; add it to the settings."""
    if office is not None and office not in load_region(settings.region_path).offices:
        raise click.BadParameter(f"the region has no office {office!r}", param_hint="--office")
    try:
        click.echo(user_entry(name, role, password, office))
    except ConfigurationError as exc:
        raise click.UsageError(exc.reason) from exc
