"""``hub amqp-tenant``: give each register interface a RabbitMQ user of its own.

::

    hub amqp-tenant add --system alkohol [--office 146501_1]   # the password: last line
    hub amqp-tenant add-all [--rotate] [--write-credentials var/registers-tenants.json]
    hub amqp-tenant list
    hub amqp-tenant remove --system alkohol [--office 146501_1] | --all

A tenant is one interface (queue pair) of the region's ``registers-amqp`` endpoints: an
office's own (``hub-alkohol-146501_1``) or a system's shared one (``hub-alkohol``), found
by ``--system`` alone or by any office it serves. See ``adapters/registers/tenants.py``
for the permissions and docs/broker.md for the figures. The command runs ``rabbitmqctl``
on the broker's host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from adapters.registers.tenants import (
    Provisioned,
    Rabbitmqctl,
    Tenant,
    TenantAccounts,
    region_tenant,
    region_tenants,
    write_credentials,
)
from hub.errors import HubError
from hub.region import load_region
from hub.settings import Settings

ROTATE_HELP = "Give existing users a new password too (their registers must be told)."
OFFICE_HELP = "The office's id, e.g. 146501_1 (not needed for a system's shared interface)."
CREDENTIALS_HELP = (
    "Also write the new passwords to this JSON file (created 0600), merged with what it holds."
)


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _accounts() -> TenantAccounts:
    return TenantAccounts(Rabbitmqctl())


@click.group("amqp-tenant")
def amqp_tenant() -> None:
    """RabbitMQ users for the offices' registers, each limited to its own queues."""


@amqp_tenant.command("add")
@click.option("--system", required=True, help="The register system, e.g. alkohol.")
@click.option("--office", help=OFFICE_HELP)
@click.option("--rotate", is_flag=True, help=ROTATE_HELP)
@click.option("--write-credentials", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def add(
    settings: Settings,
    system: str,
    office: str | None,
    rotate: bool,
    write_credentials: Path | None,
) -> None:
    """Add one interface's user; print its password as the last line, once."""
    with _as_click_errors():
        tenant = region_tenant(load_region(settings.region_path), system, office)
        [provisioned] = _accounts().add([tenant], rotate=rotate, progress=_progress)
        _hand_over([provisioned], write_credentials)
    click.echo(
        f"{tenant.user} in vhost {tenant.vhost}: reads {tenant.queues.documents}, "
        f"answers to exchange {tenant.queues.answers_exchange}, {_serves(tenant)}"
    )
    if provisioned.password is None:
        click.echo(
            f"{tenant.user} exists and keeps its password (--rotate for a new one)", err=True
        )
    else:
        click.echo(provisioned.password)


@amqp_tenant.command("add-all")
@click.option("--rotate", is_flag=True, help=ROTATE_HELP)
@click.option(
    "--write-credentials", type=click.Path(path_type=Path, dir_okay=False), help=CREDENTIALS_HELP
)
@click.pass_obj
def add_all(settings: Settings, rotate: bool, write_credentials: Path | None) -> None:
    """Add a user for every register interface of the region (idempotent)."""
    with _as_click_errors():
        tenants = region_tenants(load_region(settings.region_path))
        provisioned = _accounts().add(tenants, rotate=rotate, progress=_progress)
        _hand_over(provisioned, write_credentials)
    new = sum(1 for item in provisioned if item.password is not None)
    click.echo(
        f"{len(provisioned)} register tenant(s) for "
        f"{sum(len(item.tenant.offices) for item in provisioned)} endpoint(s): "
        f"{new} new password(s), {len(provisioned) - new} kept"
    )
    if new and write_credentials is None:
        click.echo("the new passwords were not shown: pass --write-credentials PATH", err=True)


@amqp_tenant.command("list")
@click.pass_obj
def list_tenants(settings: Settings) -> None:
    """Each register interface's user, and what its permissions let it read and write."""
    with _as_click_errors():
        listed = _accounts().listed(region_tenants(load_region(settings.region_path)))
    for tenant, permissions in listed:
        if permissions is None:
            click.echo(f"{tenant.key}\t{tenant.user}\t(no user: shares the hub's)")
            continue
        state = "ok" if permissions == tenant.permissions else "permissions differ"
        click.echo(
            f"{tenant.key}\t{tenant.user}\t{_serves(tenant)}\tvhost {tenant.vhost}"
            f"\tread {permissions.read}\twrite {permissions.write}"
            f"\tconfigure {permissions.configure}\t{state}"
        )


@amqp_tenant.command("remove")
@click.option("--system", help="The register system, e.g. alkohol.")
@click.option("--office", help=OFFICE_HELP)
@click.option("--all", "every", is_flag=True, help="Every register tenant of the region.")
@click.pass_obj
def remove(settings: Settings, system: str | None, office: str | None, every: bool) -> None:
    """Delete register users (their queues and documents stay)."""
    if every == bool(system or office) or (not every and not system):
        raise click.UsageError("give --system (and --office for an office's own), or --all")
    with _as_click_errors():
        region = load_region(settings.region_path)
        tenants = region_tenants(region) if every else [region_tenant(region, str(system), office)]
        removed = _accounts().remove(tenants, progress=_progress)
    click.echo(f"{removed} register tenant(s) removed")


def _hand_over(provisioned: list[Provisioned], path: Path | None) -> None:
    if path is None:
        return
    unknown: list[Tenant] = write_credentials(path, provisioned)
    click.echo(f"credentials written to {path}", err=True)
    if unknown:
        click.echo(
            f"{len(unknown)} existing user(s) kept a password {path} does not hold, e.g. "
            f"{unknown[0].user}: --rotate gives them new ones",
            err=True,
        )


def _serves(tenant: Tenant) -> str:
    if tenant.shared:
        return f"shared by {len(tenant.offices)} office(s)"
    return f"office {tenant.office}"


@contextlib.contextmanager
def _as_click_errors() -> Iterator[None]:
    """Report the hub's errors as the command's one-line failure."""
    try:
        yield
    except HubError as exc:
        raise click.ClickException(exc.reason) from exc
