"""Integration fixtures: the real RabbitMQ, real SQLite and PostgreSQL, simulators on loopback.

A missing service skips a local run but fails in CI (``CI=true``). Every test gets its
own queue prefix and its own database, and removes both afterwards.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest
from sqlalchemy import select
from support import OFFICES, Simulator, serve_in_thread

from hub.adapters import OutboundAdapter
from hub.broker.connection import close_quietly, connect
from hub.broker.consumer import ConsumerLoop
from hub.broker.topology import Topology
from hub.errors import HubError
from hub.inbound import accept_into
from hub.poller import Poller
from hub.region import Region, load_region
from hub.relay import OutboxRelay
from hub.runtime import build_worker
from hub.settings import DEFAULT_AMQP_URL, Settings
from hub.store.migrate import upgrade_database
from hub.store.models import AttemptRow, DeliveryRow, MessageRow
from hub.store.repository import Store
from hub.workers import DeliveryWorker
from simulators.eod.server import create_app as create_eod_app
from simulators.epuap.server import create_app as create_epuap_app

IN_CI = os.environ.get("CI") == "true"
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", DEFAULT_AMQP_URL)
POSTGRES_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"


def require(available: bool, what: str) -> None:
    """Skip locally, fail in CI, when a service the test needs is not there."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is not reachable, and CI must test against it")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    try:
        close_quietly(connect(AMQP_URL))
        available = True
    except HubError:
        available = False
    require(available, "RabbitMQ")
    return AMQP_URL


def _postgres_conninfo(database: str) -> str:
    base = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    return base.rsplit("/", 1)[0] + f"/{database}"


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A new empty SQLite file in ``folder`` or PostgreSQL database, removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'hub.db'}"
        return
    admin_database = POSTGRES_URL.rsplit("/", 1)[1]
    try:
        admin = psycopg.connect(_postgres_conninfo(admin_database), autocommit=True)
    except psycopg.OperationalError:
        require(False, "PostgreSQL")
        return
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def eod() -> Iterator[Simulator]:
    simulator = serve_in_thread(create_eod_app())
    yield simulator
    simulator.stop()


@pytest.fixture
def epuap() -> Iterator[Simulator]:
    simulator = serve_in_thread(create_epuap_app())
    yield simulator
    simulator.stop()


@pytest.fixture
def region_path(tmp_path: Path, eod: Simulator, epuap: Simulator) -> Path:
    lines = ['[region]\nname = "test region"\n']
    for office_id, name, esp in OFFICES:
        lines.append(f'[[offices]]\nid = "{office_id}"\nname = "{name}"\nesp = "{esp}"\n')
    lines.append(
        f'[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        f'url = "{eod.url}/offices/{{office}}/documents"\n'
        "timeout_s = 5.0\n"
    )
    lines.append(
        f'[[routes]]\nname = "pismo-ogolne-to-eod"\ndocument_type = "{PISMO_OGOLNE}"\n'
        'target_system = "eod"\nsteps = ["check_well_formed"]\n'
    )
    lines.append(
        f'[[inbound]]\nname = "epuap"\nkind = "epuap-pull"\n'
        f'url = "{epuap.url}/pk_external_ws/services/pull"\nconcurrency = 2\n'
    )
    path = tmp_path / "region.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path, database_url: str, amqp_url: str, region_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path,
        database_url=database_url,
        amqp_url=amqp_url,
        queue_prefix=f"test-{uuid.uuid4().hex[:10]}",
        region_path=region_path,
        retry_delays_s=(1, 2),
        max_attempts=4,
        poll_interval_s=0.1,
        relay_idle_s=0.02,
        delivery_lease_s=3.0,
        delivery_timeout_s=5.0,
        broker_backoff_max_s=1.0,
        prefetch=10,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    upgrade_database(settings)
    store = Store.from_url(settings.database_url)
    yield store
    store.close()


@dataclass
class Hub:
    """The hub's jobs running in threads of the test process, against real services."""

    settings: Settings
    store: Store
    region: Region
    threads: list[threading.Thread] = field(default_factory=list)
    stoppers: list[threading.Event] = field(default_factory=list)

    @property
    def topology(self) -> Topology:
        return self.settings.topology

    def start_relay(self, settings: Settings | None = None) -> OutboxRelay:
        relay = OutboxRelay(
            self.store, settings or self.settings, self.topology, f"relay-{uuid.uuid4()}"
        )
        self._run(relay.run, relay.stop_requested)
        return relay

    def start_worker(
        self,
        settings: Settings | None = None,
        wrap: Callable[..., Any] | None = None,
        adapters: dict[str, OutboundAdapter] | None = None,
    ) -> ConsumerLoop:
        settings = settings or self.settings
        delivery = DeliveryWorker(
            self.store, self.region, settings, self.topology, adapters=adapters or {}
        )
        loop = build_worker(settings, self.store, {"route", "deliver"}, delivery)
        if wrap is not None:
            loop._handler = wrap(loop._handler)
        self._run(loop.run, loop.stop_requested)
        return loop

    def poll(self) -> int:
        poller = Poller(self.store, self.region, self.settings, f"poller-{uuid.uuid4()}")
        try:
            return poller.poll_round(accept_into(self.store))
        finally:
            for channel in poller._channels:
                channel.stop()

    def messages(self) -> list[MessageRow]:
        with self.store.session() as session:
            return list(session.scalars(select(MessageRow)))

    def attempts(self, message_id: str) -> list[AttemptRow]:
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(AttemptRow)
                    .join(DeliveryRow, DeliveryRow.id == AttemptRow.delivery_id)
                    .where(DeliveryRow.message_id == message_id)
                    .order_by(AttemptRow.number)
                )
            )

    def wait_for(
        self, condition: Callable[[], bool], timeout_s: float = 30.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")

    def wait_until_settled(self, count: int, timeout_s: float = 30.0) -> list[MessageRow]:
        final = {"delivered", "dead", "rejected"}
        self.wait_for(
            lambda: sum(1 for row in self.messages() if row.status in final) >= count,
            timeout_s,
            f"{count} messages to settle",
        )
        return self.messages()

    def message_of_delivery(self, delivery_id: str) -> str:
        with self.store.session() as session:
            delivery = session.get(DeliveryRow, delivery_id)
            assert delivery is not None
            return delivery.message_id

    def queue_depth(self, queue: str) -> int:
        connection = pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url))
        try:
            return connection.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()

    def stop(self) -> None:
        for event in self.stoppers:
            event.set()
        for thread in self.threads:
            thread.join(10)

    def _run(self, target: Callable[[], None], stop: threading.Event) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)
        self.stoppers.append(stop)


@pytest.fixture
def hub(settings: Settings, store: Store) -> Iterator[Hub]:
    harness = Hub(settings, store, load_region(settings.region_path))
    connection = connect(settings.amqp_url)
    harness.topology.declare(connection.channel())
    close_quietly(connection)
    yield harness
    harness.stop()
    connection = connect(settings.amqp_url)
    harness.topology.delete(connection.channel())
    close_quietly(connection)


@pytest.fixture
def enqueue_filings(epuap: Simulator) -> Callable[[int], int]:
    """Put ``per_office`` generated pisma ogólne into every test office's mailbox."""

    def enqueue(per_office: int) -> int:
        mailboxes = [
            {
                "address": esp,
                "office_name": name,
                "office_teryt": office_id.replace("_", ""),
                "count": per_office,
            }
            for office_id, name, esp in OFFICES
        ]
        answer = epuap.admin(
            "POST", "/_sim/documents", json={"mailboxes": mailboxes, "seed": 7, "attachments": 1}
        )
        return int(answer["enqueued"])

    return enqueue
