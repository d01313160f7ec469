"""``python -m simulators.registers --system S [--office O ...]``: run a register on AMQP.

Reads ``legacy.<system>.<office>.in`` for each ``--office`` (or the queues given with
``--queue-in``/``--queue-out`` templates), answers on ``.out``, and serves its admin API
on ``--port``. Templates without ``{office}`` (``legacy.{system}.in``) are the system's
shared interface: one queue pair, one connection, whatever the offices (``--office`` may
then be left out), each document registered for the office its ``hub-office`` names.

``--credentials PATH`` is the JSON file ``hub amqp-tenant add-all --write-credentials``
writes (``{"tenants": {"<system>@<office>" or "<system>": {"user", "password", "vhost",
"documents", "answers"}}}``): an interface found there (by its documents queue) is served
with its own user on a connection of its own, on ``--amqp-url``'s host and port; the
others share ``--amqp-url``'s user.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import pika

from hub.settings import DEFAULT_AMQP_URL
from simulators.registers.peer import Interface, RegisterSimulator
from simulators.registers.server import create_app
from simulators.serving import loopback_server

OFFICE = "{office}"


def main() -> None:
    """Read and answer until SIGTERM; print the admin address once listening."""
    parser = argparse.ArgumentParser(description="register system (AMQP) simulator")
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--system", required=True, help="e.g. zezwolenia-alkoholowe")
    parser.add_argument("--office", action="append", default=[], help="TERYT id; repeatable")
    parser.add_argument("--queue-in", default="legacy.{system}.{office}.in")
    parser.add_argument("--queue-out", default="legacy.{system}.{office}.out")
    parser.add_argument("--prefix", default="REJ", help="register numbers start with this")
    parser.add_argument("--credentials", type=Path, help="the offices' own broker users (JSON)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    arguments = parser.parse_args()
    shared = not any(OFFICE in t for t in (arguments.queue_in, arguments.queue_out))
    if not arguments.office and not shared:
        parser.error("--office is needed while a queue template names {office}")
    tenants = _read_tenants(arguments.credentials) if arguments.credentials else {}
    offices: list[str | None] = [None] if shared else list(arguments.office)
    # A shared interface is one, however many offices it serves.
    interfaces = [_interface(arguments, office, tenants) for office in offices]
    simulator = RegisterSimulator(arguments.amqp_url, interfaces)
    # The admin API runs in this process, beside the register's thread (gunicorn would
    # fork it away from the thread); it answers a handful of test calls, not traffic.
    server = loopback_server(create_app(simulator), arguments.host, arguments.port)
    signal.signal(signal.SIGTERM, _exit)
    simulator.start()
    print(
        f"registers simulator listening on http://{arguments.host}:{server.port} "
        f"({_served(arguments.office, shared)} over {simulator.connections} connections)",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        simulator.stop()


def _interface(
    arguments: argparse.Namespace, office: str | None, tenants: dict[str, dict[str, str]]
) -> Interface:
    # Formatting a shared template ignores the office; "" keeps str.format from failing.
    names = {"system": arguments.system, "office": office or ""}
    documents = arguments.queue_in.format(**names)
    answers = arguments.queue_out.format(**names)
    entry = next((e for e in tenants.values() if e.get("documents") == documents), None)
    if entry is None:
        return Interface(documents, answers, arguments.prefix, office=office)
    return Interface(
        entry["documents"],
        entry["answers"],
        arguments.prefix,
        amqp_url=_tenant_url(arguments.amqp_url, entry),
        office=office,
    )


def _served(offices: list[str], shared: bool) -> str:
    if shared:
        return f"one shared interface for {len(offices) or 'any'} offices"
    return f"{len(offices)} offices"


def _read_tenants(path: Path) -> dict[str, dict[str, str]]:
    values: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    tenants: dict[str, dict[str, str]] = values["tenants"]
    return tenants


def _tenant_url(broker_url: str, entry: dict[str, str]) -> str:
    where = pika.URLParameters(broker_url)
    user, password, vhost = (quote(entry[key], safe="") for key in ("user", "password", "vhost"))
    return f"amqp://{user}:{password}@{where.host}:{where.port}/{vhost}"


def _exit(_signum: int, _frame: FrameType | None) -> None:
    sys.exit(0)


if __name__ == "__main__":
    main()
