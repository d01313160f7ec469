"""What knowing the caller costs a request: the client registry's lookup beside a bare read.

Every inbound HTTP door authenticates its caller with one indexed read of the clients
table (``ClientRegistry.authenticate``: the SHA-256 of the token, the current or the
overlapping secret, not revoked). This measures it per call on SQLite and PostgreSQL for
a region's worth of clients (default 357, one per office), beside the bare read
transaction it rides on (``SELECT 1``), in the same run.

    .venv/bin/python benchmarks/client_auth.py [--clients 357] [--calls 2000]

Benchmarks print figures; they never assert timings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import select

from hub.identity import ClientRegistry
from hub.settings import Settings
from hub.store.migrate import upgrade_database
from hub.store.repository import Store

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def per_call_us(calls: int, call: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for index in range(calls):
        call(index)
    return (time.perf_counter() - started) / calls * 1e6


def measure(url: str, label: str, clients: int, calls: int) -> None:
    upgrade_database(Settings(var_dir=Path(tempfile.mkdtemp()), database_url=url))
    store = Store.from_url(url)
    registry = ClientRegistry(store)
    tokens = [registry.add(f"eod-{i}", "146501_1", sources=["eod"]) for i in range(clients)]

    def authenticate(index: int) -> object:
        return registry.authenticate(tokens[index % clients])

    def bare_read(_index: int) -> object:
        with store.reading() as connection:
            return connection.execute(select(1)).scalar()

    auth_us, bare_us = per_call_us(calls, authenticate), per_call_us(calls, bare_read)
    print(
        f"{label:10} authenticate {auth_us:6.0f} us/call   bare read {bare_us:6.0f} us/call"
        f"   ratio {auth_us / bare_us:4.2f}   ({clients} clients, {calls} calls)"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=357)
    parser.add_argument("--calls", type=int, default=2000)
    arguments = parser.parse_args()
    measure(f"sqlite:///{tempfile.mkdtemp()}/hub.db", "sqlite", arguments.clients, arguments.calls)
    admin = psycopg.connect(POSTGRES, autocommit=True)
    name = f"bench_clients_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        measure(url, "postgresql", arguments.clients, arguments.calls)
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
