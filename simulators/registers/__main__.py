"""``python -m simulators.registers --system S --office O ...``: run a register on AMQP.

Reads ``legacy.<system>.<office>.in`` for each ``--office`` (or the queues given with
``--queue-in``/``--queue-out`` templates), answers on ``.out``, and serves its admin API
on ``--port``.

``--credentials PATH`` is the JSON file ``hub amqp-tenant add-all --write-credentials``
writes (``{"tenants": {"<system>@<office>": {"user", "password", "vhost", "documents",
"answers"}}}``): an office found there is served with its own user on a connection of its
own, on ``--amqp-url``'s host and port; the others share ``--amqp-url``'s user.
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


def main() -> None:
    """Read and answer until SIGTERM; print the admin address once listening."""
    parser = argparse.ArgumentParser(description="register system (AMQP) simulator")
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--system", required=True, help="e.g. zezwolenia-alkoholowe")
    parser.add_argument("--office", action="append", required=True, help="TERYT id; repeatable")
    parser.add_argument("--queue-in", default="legacy.{system}.{office}.in")
    parser.add_argument("--queue-out", default="legacy.{system}.{office}.out")
    parser.add_argument("--prefix", default="REJ", help="register numbers start with this")
    parser.add_argument("--credentials", type=Path, help="the offices' own broker users (JSON)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    arguments = parser.parse_args()
    tenants = _read_tenants(arguments.credentials) if arguments.credentials else {}
    interfaces = [_interface(arguments, office, tenants) for office in arguments.office]
    simulator = RegisterSimulator(arguments.amqp_url, interfaces)
    # The admin API runs in this process, beside the register's thread (gunicorn would
    # fork it away from the thread); it answers a handful of test calls, not traffic.
    server = loopback_server(create_app(simulator), arguments.host, arguments.port)
    signal.signal(signal.SIGTERM, _exit)
    simulator.start()
    print(
        f"registers simulator listening on http://{arguments.host}:{server.port} "
        f"({len(interfaces)} offices over {simulator.connections} connections)",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        simulator.stop()


def _interface(
    arguments: argparse.Namespace, office: str, tenants: dict[str, dict[str, str]]
) -> Interface:
    entry = tenants.get(f"{arguments.system}@{office}")
    if entry is None:
        return Interface(
            arguments.queue_in.format(system=arguments.system, office=office),
            arguments.queue_out.format(system=arguments.system, office=office),
            arguments.prefix,
        )
    return Interface(
        entry["documents"],
        entry["answers"],
        arguments.prefix,
        amqp_url=_tenant_url(arguments.amqp_url, entry),
    )


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
