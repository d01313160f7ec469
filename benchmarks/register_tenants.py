"""What a region's register tenants cost the broker: making their users, and connecting them.

In a throw-away vhost (``bench-tenants-<random>``), for N tenants (default 628; the sample
region has 356 registers endpoints) it measures:

- one ``rabbitmqctl import_definitions`` of N users and their permissions, until the
  broker shows them all (what ``hub amqp-tenant add-all`` does, without declaring the
  interface queues: declaring the whole region's would need the broker's raised
  open-files limit, see docs/broker.md);
- the same for one tenant by ``rabbitmqctl add_user`` + ``set_permissions`` (the cost per
  user of the one-call-per-user way);
- C connections (default N) opened as C different tenants, each with one channel, and the
  broker's sockets and connection memory while they are open (``rabbitmqctl status``).

The users and the vhost are removed afterwards (``delete_user`` one by one: slow).

    .venv/bin/python benchmarks/register_tenants.py [--tenants 628] [--connections 628]

Benchmarks print figures; they never assert timings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import uuid
from typing import Any

import pika

from adapters.registers.tenants import Permissions, Rabbitmqctl, password_hash

PASSWORD = "bench-password"
CONNECTION_MEMORY = (
    "connection_readers",
    "connection_writers",
    "connection_channels",
    "connection_other",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=628)
    parser.add_argument("--connections", type=int)
    parser.add_argument("--host", default="127.0.0.1:5672")
    arguments = parser.parse_args()
    accounts = Rabbitmqctl()
    vhost = f"bench-tenants-{uuid.uuid4().hex[:8]}"
    users = [f"bench-tenant-{vhost[-8:]}-{number}" for number in range(arguments.tenants)]
    try:
        print(f"import of {len(users)} users: {_import(accounts, vhost, users):.1f} s")
        print(f"one user by add_user + set_permissions: {_one_by_one(vhost, users[0]):.1f} s")
        _connect(arguments.host, vhost, users[: arguments.connections or len(users)])
    finally:
        started = time.monotonic()
        for user in users:
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_user", user], capture_output=True, check=False
            )
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, check=False
        )
        print(f"delete_user x {len(users)}: {time.monotonic() - started:.1f} s")


def _import(accounts: Rabbitmqctl, vhost: str, users: list[str]) -> float:
    nothing = Permissions("^$", "^$", "^$")
    started = time.monotonic()
    accounts.import_definitions(
        {
            "vhosts": [{"name": vhost}],
            "users": [
                {
                    "name": user,
                    "password_hash": password_hash(PASSWORD),
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": [],
                }
                for user in users
            ],
            "permissions": [
                {"user": user, "vhost": vhost, "configure": "^$", "write": "^$", "read": "^$"}
                for user in users
            ],
        }
    )
    while True:
        try:
            held = accounts.permissions(vhost)
        except Exception:  # noqa: BLE001 - the vhost is not there yet
            held = {}
        if all(held.get(user) == nothing for user in users):
            return time.monotonic() - started
        time.sleep(0.2)


def _one_by_one(vhost: str, user: str) -> float:
    started = time.monotonic()
    subprocess.run(
        ["rabbitmqctl", "-q", "add_user", f"{user}-x", PASSWORD], capture_output=True, check=False
    )
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, f"{user}-x", "^$", "^$", "^$"],
        capture_output=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    subprocess.run(
        ["rabbitmqctl", "-q", "delete_user", f"{user}-x"], capture_output=True, check=False
    )
    return elapsed


def _connect(host: str, vhost: str, users: list[str]) -> None:
    before = _status()
    started = time.monotonic()
    connections = []
    try:
        for user in users:
            url = f"amqp://{user}:{PASSWORD}@{host}/{vhost}"
            connection = pika.BlockingConnection(pika.URLParameters(url))
            connection.channel()
            connections.append(connection)
        opened_s = time.monotonic() - started
        time.sleep(2)  # let the broker's figures settle
        during = _status()
    finally:
        for connection in connections:
            connection.close()
    memory_mb = (during["connection_memory"] - before["connection_memory"]) / 1e6
    print(
        f"{len(users)} tenant connections opened in {opened_s:.1f} s; broker sockets "
        f"{before['sockets']} -> {during['sockets']} of {during['socket_limit']} "
        f"(file handles {during['handles']} of {during['handle_limit']}); connection memory "
        f"+{memory_mb:.1f} MB ({memory_mb * 1000 / max(len(users), 1):.0f} KB each)"
    )


def _status() -> dict[str, Any]:
    output = subprocess.run(
        ["rabbitmqctl", "-q", "status", "--formatter", "json"], capture_output=True, check=True
    ).stdout
    status = json.loads(output)
    descriptors, memory = status["file_descriptors"], status["memory"]
    return {
        "sockets": descriptors["sockets_used"],
        "socket_limit": descriptors["sockets_limit"],
        "handles": descriptors["total_used"],
        "handle_limit": descriptors["total_limit"],
        "connection_memory": sum(memory.get(key, 0) for key in CONNECTION_MEMORY),
    }


if __name__ == "__main__":
    main()
