"""A fresh RabbitMQ vhost per test, the hub's own user in it, and the tenants made there."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable
from urllib.parse import quote

import pika

from adapters.registers.tenants import Rabbitmqctl, Tenant

EVERYTHING = ".*"


def in_vhost(
    amqp_url: str, vhost: str, user: str | None = None, password: str | None = None
) -> str:
    """``amqp_url`` pointed at ``vhost``, optionally as another user."""
    where = pika.URLParameters(amqp_url)
    user = user or where.credentials.username
    password = password or where.credentials.password
    user, password, vhost = (quote(value, safe="") for value in (user, password, vhost))
    return f"amqp://{user}:{password}@{where.host}:{where.port}/{vhost}"


def create_vhost(accounts: Rabbitmqctl, vhost: str, hub_user: str, timeout_s: float = 30.0) -> None:
    """Create ``vhost`` with every permission for the hub's user (one rabbitmqctl call)."""
    accounts.import_definitions(
        {
            "vhosts": [{"name": vhost}],
            "permissions": [
                {
                    "user": hub_user,
                    "vhost": vhost,
                    "configure": EVERYTHING,
                    "write": EVERYTHING,
                    "read": EVERYTHING,
                }
            ],
        }
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if hub_user in accounts.permissions(vhost):
                return
        except Exception:
            pass  # the vhost is not there yet
        time.sleep(0.2)
    raise AssertionError(f"vhost {vhost} did not appear within {timeout_s} s")


def remove_vhost_and_tenants(vhost: str, tenants: Iterable[Tenant]) -> None:
    """Delete the vhost (its queues and exchanges with it) and the tenants' users."""
    subprocess.run(
        ["rabbitmqctl", "--quiet", "delete_vhost", vhost], capture_output=True, check=False
    )
    for user in {tenant.user for tenant in tenants}:
        subprocess.run(
            ["rabbitmqctl", "--quiet", "delete_user", user], capture_output=True, check=False
        )
