"""Each register interface on the broker as a RabbitMQ user of its own (a tenant).

A tenant is one interface, one queue pair (``adapters/registers/interface.py``), not one
endpoint. An office's own interface (the endpoint ``alkohol@146501_1`` on
``legacy.alkohol.146501_1.in``) connects as ``hub-alkohol-146501_1``; a system's shared
interface (``legacy.alkohol.in``, every office's alcohol permits in one regional module)
connects as ``hub-alkohol``. Its permissions in the registers' vhost (the one the
endpoints' ``url`` names) cover its own interface only:

- read: its documents queue (consume, get);
- write: its answers exchange, which bears the answers queue's name and is bound to
  that queue alone (``RegisterQueues.answers_exchange``); never the default exchange,
  through which a publisher reaches every queue of the vhost (the hub's own
  ``hub.accepted``, another interface's ``.out``);
- configure: nothing. The hub declares the queues and the exchange (the tenant command
  does so as it adds the tenant, and every hub process that connects to them); the
  register only passively declares them, which needs no permission.

Users are made with ``rabbitmqctl``, which is on the broker's host (the management
plugin, and with it the HTTP API, is off on the hub's machines): many at once with one
``import_definitions`` of users (their salted SHA-256 password hashes, never the
passwords) and permissions, because each ``rabbitmqctl`` call costs about half a second
and a region may have hundreds of interfaces (docs/broker.md has the figures).

The ``hub amqp-tenant`` command (``add``, ``add-all``, ``list``, ``remove``) drives it; the
password of a new tenant is shown once (``add``: the last line of standard output), or
written to a credentials file (0600) for the register's operator or the demo's register
simulator (``--write-credentials PATH``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika
from pika.adapters.blocking_connection import BlockingChannel

from adapters.registers.interface import RegisterInterface, RegisterQueues, register_interfaces
from adapters.registers.outbound import declare_register_queues
from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.errors import ConfigurationError, HubError
from hub.region import EndpointConfig, Region

REGISTERS_KIND = "registers-amqp"
USER_PREFIX = "hub-"
# RabbitMQ's default hashing module; the hash is what import_definitions takes.
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
SALT_BYTES = 4
NOTHING = "^$"
PASSWORD_BYTES = 24
# import_definitions returns before the node has applied what it imported.
IMPORT_WAIT_S = 60.0
IMPORT_POLL_S = 0.2


class TenantError(HubError):
    """A tenant could not be made, listed or removed; the broker's account is unchanged
    or partly changed, and running the command again finishes it (it is idempotent)."""

    code = "amqp-tenant"


@dataclass(frozen=True, slots=True)
class Permissions:
    """A user's permission regexes in one vhost."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class Tenant:
    """One register interface (a queue pair) as a broker user of its own.

    ``office`` is the office of an office's own interface, None for a system's shared
    interface, which serves ``offices`` (every office of its endpoints).
    """

    system: str
    office: str | None
    vhost: str
    queues: RegisterQueues
    # How the hub itself (its own user) reaches the registers' broker: the endpoint's url,
    # with the hub's password in it, so kept out of the repr.
    hub_url: str = field(repr=False)
    offices: tuple[str, ...] = ()

    @classmethod
    def of(cls, endpoint: EndpointConfig) -> Tenant:
        """The tenant of a ``registers-amqp`` endpoint's interface, as if it were alone.

        A shared interface gets its offices from :func:`region_tenants`.
        """
        [interface] = register_interfaces([endpoint])
        return cls.of_interface(interface, endpoint)

    @classmethod
    def of_interface(cls, interface: RegisterInterface, endpoint: EndpointConfig) -> Tenant:
        """The tenant of ``interface``, in the vhost of ``endpoint`` (one of its own)."""
        return cls(
            system=interface.system,
            office=None if interface.shared else endpoint.office,
            vhost=pika.URLParameters(endpoint.url).virtual_host,
            queues=interface.queues,
            hub_url=endpoint.url,
            offices=interface.offices,
        )

    @property
    def shared(self) -> bool:
        """Whether it is its system's shared interface (no office of its own)."""
        return self.office is None

    @property
    def user(self) -> str:
        """The tenant's user name: ``hub-alkohol-146501_1``, or ``hub-alkohol`` if shared."""
        if self.office is None:
            return f"{USER_PREFIX}{self.system}"
        return f"{USER_PREFIX}{self.system}-{self.office}"

    @property
    def key(self) -> str:
        """Its name in the credentials file and ``list``: ``system@office``, or ``system``."""
        return self.system if self.office is None else f"{self.system}@{self.office}"

    @property
    def permissions(self) -> Permissions:
        """Read its documents queue, write its answers exchange, configure nothing."""
        return Permissions(
            configure=NOTHING,
            write=f"^{re.escape(self.queues.answers_exchange)}$",
            read=f"^{re.escape(self.queues.documents)}$",
        )


def region_tenants(region: Region) -> list[Tenant]:
    """The tenant of every distinct interface of the region's ``registers-amqp`` endpoints.

    In the region's order; endpoints sharing an interface (same system, same queue names,
    same vhost) share its tenant.

    Raises:
        ConfigurationError: two interfaces would be the same user in one vhost (a system
            with two shared interfaces there), which would let each read the other's.
    """
    by_vhost: dict[str, list[EndpointConfig]] = {}
    for endpoint in region.endpoints.values():
        if endpoint.kind == REGISTERS_KIND:
            vhost = pika.URLParameters(endpoint.url).virtual_host
            by_vhost.setdefault(vhost, []).append(endpoint)
    tenants = [
        Tenant.of_interface(interface, region.endpoints[interface.endpoints[0]])
        for endpoints in by_vhost.values()
        for interface in register_interfaces(endpoints)
    ]
    _refuse_one_user_for_two_interfaces(tenants)
    return tenants


def _refuse_one_user_for_two_interfaces(tenants: list[Tenant]) -> None:
    seen: dict[tuple[str, str], Tenant] = {}
    for tenant in tenants:
        other = seen.setdefault((tenant.vhost, tenant.user), tenant)
        if other is not tenant:
            raise ConfigurationError(
                f"{REGISTERS_KIND} system {tenant.system} has two shared interfaces in vhost "
                f"{tenant.vhost} ({other.queues.documents}, {tenant.queues.documents}): both "
                f"would be user {tenant.user}; give its endpoints one queue_in/queue_out"
            )


def region_tenant(region: Region, system: str, office: str | None = None) -> Tenant:
    """The tenant of the interface ``system@office`` uses, or of ``system``'s shared one.

    Raises:
        ConfigurationError: no ``registers-amqp`` endpoint ``system@office`` (or none of
            ``system``); or no office given for a system whose interfaces are per office.
    """
    tenants = [tenant for tenant in region_tenants(region) if tenant.system == system]
    if office is not None:
        endpoint = region.endpoints.get(f"{system}@{office}")
        if endpoint is None or endpoint.kind != REGISTERS_KIND:
            raise ConfigurationError(
                f"the region has no {REGISTERS_KIND} endpoint {system}@{office}"
            )
        vhost = pika.URLParameters(endpoint.url).virtual_host
        return next(t for t in tenants if t.vhost == vhost and office in t.offices)
    if not tenants:
        raise ConfigurationError(f"the region has no {REGISTERS_KIND} endpoint of {system}")
    shared = [tenant for tenant in tenants if tenant.shared]
    if len(shared) != 1 or len(tenants) != 1:
        raise ConfigurationError(
            f"{system} has {len(tenants)} interfaces ({len(shared)} shared): "
            "give --office to name the one an office uses"
        )
    return shared[0]


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's salted SHA-256 hash of a password: base64(salt + sha256(salt + password))."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(tenants: Iterable[Tenant], passwords: Mapping[str, str]) -> dict[str, Any]:
    """The definitions that make ``passwords``' users and set every tenant's permissions.

    Tenants absent from ``passwords`` keep their user (and its password) as it is; their
    permissions are set again, so an edited queue template takes effect.
    """
    tenants = list(tenants)
    users = [
        {
            "name": user,
            "password_hash": password_hash(password),
            "hashing_algorithm": HASHING_ALGORITHM,
            "tags": [],
        }
        for user, password in passwords.items()
    ]
    permissions = [
        {"user": tenant.user, "vhost": tenant.vhost, **_as_dict(tenant.permissions)}
        for tenant in tenants
    ]
    return {"users": users, "permissions": permissions}


class Rabbitmqctl:
    """The broker's user accounts through ``rabbitmqctl`` (run on the broker's host)."""

    def __init__(self, executable: str = "rabbitmqctl", timeout_s: float = 120.0) -> None:
        self._executable = executable
        self._timeout_s = timeout_s

    def users(self) -> set[str]:
        """Every user name of the broker."""
        return {entry["user"] for entry in self._json("list_users")}

    def permissions(self, vhost: str) -> dict[str, Permissions]:
        """Every user's permissions in ``vhost``, by user name."""
        return {
            entry["user"]: Permissions(entry["configure"], entry["write"], entry["read"])
            for entry in self._json("list_permissions", "-p", vhost)
        }

    def import_definitions(self, values: Mapping[str, Any]) -> None:
        """Import users, vhosts and permissions in one call (read from standard input).

        The node applies them after the command returns: callers wait for what they need.
        """
        self._run("import_definitions", stdin=json.dumps(values).encode())

    def delete_user(self, user: str) -> None:
        """Delete a user; its connections are closed by the broker."""
        self._run("delete_user", user)

    def _json(self, *arguments: str) -> list[dict[str, Any]]:
        output = self._run(*arguments, "--formatter", "json")
        try:
            values: list[dict[str, Any]] = json.loads(output or b"[]")
        except ValueError as exc:
            raise TenantError(f"rabbitmqctl {arguments[0]} printed no JSON: {exc}") from exc
        return values

    def _run(self, *arguments: str, stdin: bytes | None = None) -> bytes:
        command = [self._executable, "--quiet", *arguments]
        try:
            completed = subprocess.run(
                command, input=stdin, capture_output=True, timeout=self._timeout_s, check=True
            )
        except FileNotFoundError as exc:
            raise TenantError(
                f"{self._executable} is not on PATH: run the command on the broker's host"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise TenantError(f"rabbitmqctl {arguments[0]} took over {self._timeout_s} s") from exc
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or b"").decode(errors="replace").strip()
            raise TenantError(f"rabbitmqctl {arguments[0]} failed: {detail[-500:]}") from exc
        return completed.stdout


@dataclass(frozen=True, slots=True)
class Provisioned:
    """A tenant after ``add``: its new password, or None when its user kept its own."""

    tenant: Tenant
    password: str | None


Progress = Callable[[str], None]


def _quiet(_line: str) -> None:
    """Progress nobody reads."""


class TenantAccounts:
    """Adds, lists and removes tenants: broker users through ``accounts``, queues as the hub.

    Args:
        accounts: the broker's user accounts (:class:`Rabbitmqctl`).
    """

    def __init__(self, accounts: Rabbitmqctl) -> None:
        self._accounts = accounts

    def add(
        self,
        tenants: list[Tenant],
        *,
        rotate: bool | Iterable[str] = False,
        progress: Progress = _quiet,
    ) -> list[Provisioned]:
        """Declare the tenants' interfaces and give each a user with its permissions.

        Idempotent: an existing user keeps its password unless ``rotate`` is True or
        names it; its permissions are set again either way.

        Raises:
            TenantError: rabbitmqctl failed, or the broker did not show the users in time.
            BrokerUnavailable: the hub could not declare the interfaces.
        """
        self.declare_interfaces(tenants, progress)
        existing = self._accounts.users()
        renewed = _renewed(tenants, existing, rotate)
        passwords = {tenant.user: secrets.token_urlsafe(PASSWORD_BYTES) for tenant in renewed}
        progress(f"{len(passwords)} new password(s), {len(tenants) - len(passwords)} kept")
        self._accounts.import_definitions(definitions(tenants, passwords))
        self._wait_until_applied(tenants, progress)
        return [Provisioned(tenant, passwords.get(tenant.user)) for tenant in tenants]

    def declare_interfaces(self, tenants: list[Tenant], progress: Progress = _quiet) -> None:
        """Declare every tenant's queues and answers exchange with the hub's own user.

        Declared before the register first connects: it may only passively declare them.

        Raises:
            BrokerUnavailable: the broker is unreachable or refused a declaration.
        """
        declared = 0
        for hub_url in dict.fromkeys(tenant.hub_url for tenant in tenants):
            with _hub_channel(hub_url) as channel:
                for tenant in (t for t in tenants if t.hub_url == hub_url):
                    declare_register_queues(channel, tenant.queues)
                    declared += 1
                    if declared % 50 == 0 or declared == len(tenants):
                        progress(f"interfaces declared: {declared}/{len(tenants)}")

    def listed(self, tenants: list[Tenant]) -> list[tuple[Tenant, Permissions | None]]:
        """Each tenant with the permissions its user holds in its vhost (None: no user)."""
        held: dict[str, dict[str, Permissions]] = {}
        for vhost in sorted({tenant.vhost for tenant in tenants}):
            held[vhost] = self._accounts.permissions(vhost)
        users = self._accounts.users()
        return [
            (tenant, held[tenant.vhost].get(tenant.user) if tenant.user in users else None)
            for tenant in tenants
        ]

    def remove(self, tenants: list[Tenant], progress: Progress = _quiet) -> int:
        """Delete the tenants' users (their queues stay: they hold documents); how many.

        Raises:
            TenantError: rabbitmqctl failed.
        """
        existing = self._accounts.users()
        doomed = [tenant for tenant in tenants if tenant.user in existing]
        for number, tenant in enumerate(doomed, start=1):
            self._accounts.delete_user(tenant.user)
            progress(f"removed {tenant.user} ({number}/{len(doomed)})")
        return len(doomed)

    def _wait_until_applied(self, tenants: list[Tenant], progress: Progress) -> None:
        wanted = {(tenant.vhost, tenant.user): tenant.permissions for tenant in tenants}
        deadline = time.monotonic() + IMPORT_WAIT_S
        while True:
            missing = self._missing(wanted)
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TenantError(
                    f"the broker did not apply {len(missing)} tenant(s) within "
                    f"{IMPORT_WAIT_S:.0f} s, e.g. {missing[0]}; run the command again"
                )
            progress(f"waiting for the broker to apply {len(missing)} tenant(s)")
            time.sleep(IMPORT_POLL_S)

    def _missing(self, wanted: Mapping[tuple[str, str], Permissions]) -> list[str]:
        held = {vhost: self._accounts.permissions(vhost) for vhost, _user in wanted}
        return [
            user
            for (vhost, user), permissions in wanted.items()
            if held[vhost].get(user) != permissions
        ]


@contextlib.contextmanager
def _hub_channel(hub_url: str) -> Iterator[BlockingChannel]:
    connection = connect(hub_url)
    try:
        with translate_broker_errors(hub_url):
            yield connection.channel()
    finally:
        close_quietly(connection)


def _renewed(
    tenants: list[Tenant], existing: set[str], rotate: bool | Iterable[str]
) -> list[Tenant]:
    if isinstance(rotate, bool):
        rotated = {tenant.user for tenant in tenants} if rotate else set()
    else:
        rotated = set(rotate)
    return [t for t in tenants if t.user not in existing or t.user in rotated]


def _as_dict(permissions: Permissions) -> dict[str, str]:
    return dataclasses.asdict(permissions)


# ---- the credentials file ------------------------------------------------------------


def read_credentials(path: Path) -> dict[str, dict[str, str]]:
    """The credentials file's tenants by key (``system@office``, or ``system`` if shared).

    Empty if the file is absent.

    Raises:
        ConfigurationError: the file is not such JSON.
    """
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not a tenants' credentials file: {exc}") from exc
    tenants = values.get("tenants") if isinstance(values, dict) else None
    if not isinstance(tenants, dict):
        raise ConfigurationError(f'{path}: no "tenants" object')
    return tenants


def write_credentials(path: Path, provisioned: Iterable[Provisioned]) -> list[Tenant]:
    """Add the new passwords to the credentials file at ``path`` (created 0600).

    Entries of tenants whose users kept their passwords stay as the file had them.

    Returns:
        The tenants whose users kept a password the file does not hold (their register
        needs ``--rotate`` to get one through this file).
    """
    tenants = read_credentials(path)
    unknown: list[Tenant] = []
    for item in provisioned:
        if item.password is not None:
            tenants[item.tenant.key] = _credentials_entry(item.tenant, item.password)
        elif item.tenant.key not in tenants:
            unknown.append(item.tenant)
    _write_private(path, json.dumps({"tenants": tenants}, indent=1, sort_keys=True) + "\n")
    return unknown


def tenant_url(broker_url: str, entry: Mapping[str, str]) -> str:
    """``broker_url``'s host and port with the tenant's user, password and vhost."""
    where = pika.URLParameters(broker_url)
    scheme = "amqps" if where.ssl_options is not None else "amqp"
    user, password, vhost = (
        _quote(entry["user"]),
        _quote(entry["password"]),
        _quote(entry["vhost"]),
    )
    return f"{scheme}://{user}:{password}@{where.host}:{where.port}/{vhost}"


def _credentials_entry(tenant: Tenant, password: str) -> dict[str, str]:
    return {
        "user": tenant.user,
        "password": password,
        "vhost": tenant.vhost,
        "documents": tenant.queues.documents,
        "answers": tenant.queues.answers_exchange,
    }


def _write_private(path: Path, text: str) -> None:
    # Created 0600 (and its folder 0700) rather than chmod-ed after writing, so the
    # passwords are never readable by others, not even for a moment; replaced atomically.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)


def _quote(value: str) -> str:
    return quote(value, safe="")
