"""``hub drill``: a flow of filings carried through the faults a production hub meets.

The drill runs the whole hub (relay, workers, poller) against the ePUAP and EOD
simulators on PostgreSQL and RabbitMQ, fills the offices' ePUAP mailboxes, and while
the documents flow it:

(e) makes ePUAP serve documents again (their receipt confirmations are lost),
(a) takes the broker away (a real ``rabbitmqctl stop_app``/``start_app`` restart, or
    every connection cut at a proxy),
(b) kills a worker with SIGKILL (a new one is started, as a supervisor would),
(c) makes the database unreachable (every connection cut at a proxy) for a while,
(d) takes the destination (the EOD) down for a while, then brings it back.

At the end it counts, per source document (ePUAP's digest of it), how many times the
destination registered it: lost (0) and doubled (>1) must both be zero. It prints the
table and the timeline, and exits 1 if anything was lost or doubled.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import psycopg
import requests
from sqlalchemy import func, select

from hub.errors import HubError
from hub.settings import Settings
from hub.store.models import AttemptRow
from hub.store.repository import Store
from simulators.demo import (
    FINAL_STATUSES,
    Demo,
    OfficeCount,
    _demo_settings,
    stop_on_sigterm,
)
from simulators.processes import start_hub_process
from simulators.tcp_proxy import CuttableProxy

DRILL_QUEUE_SUFFIX = "-drill"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/hub_drill"
FAULT_PAUSE_S = 2.0
DRILL_RETRY_DELAYS_S = (1, 5, 15, 30)


@dataclass(frozen=True)
class DrillPlan:
    """How hard the drill hits, and for how long."""

    documents: int
    duplicates: int
    broker: str
    broker_outage_s: float
    database_outage_s: float
    destination_outage_s: float


@dataclass
class Timeline:
    """What the drill did, when (seconds since the flow started)."""

    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        """Record ``what`` now, and say it."""
        moment = round(time.monotonic() - self.started, 1)
        self.events.append((moment, what))
        click.echo(f"drill: t={moment:7.1f} s  {what}", err=True)


@dataclass(frozen=True)
class DrillResult:
    """The per-document count at the destination, and the run's figures."""

    documents: int
    delivered_once: int
    lost: int
    doubled: int
    dead: int
    rejected: int
    served_again_by_epuap: int
    attempts_by_outcome: dict[str, int]
    elapsed_s: float
    database: str
    broker_fault: str
    timeline: list[tuple[float, str]]

    @property
    def nothing_lost_nothing_doubled(self) -> bool:
        """The drill's verdict."""
        return self.lost == 0 and self.doubled == 0 and self.delivered_once == self.documents


@click.command("drill")
@click.option("--documents", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--offices",
    type=OfficeCount(),
    default="5",
    show_default=True,
)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--duplicates",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="ePUAP receipt confirmations to lose, so those documents are served again.",
)
@click.option(
    "--broker",
    type=click.Choice(["restart", "cut"]),
    default="restart",
    show_default=True,
    help="restart: rabbitmqctl stop_app/start_app; cut: drop every connection at a proxy.",
)
@click.option("--broker-outage-s", type=float, default=10.0, show_default=True)
@click.option("--database-outage-s", type=float, default=30.0, show_default=True)
@click.option("--destination-outage-s", type=float, default=180.0, show_default=True)
@click.option(
    "--database-url",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="A PostgreSQL database the drill may drop and create.",
)
@click.option("--timeout-s", type=float, default=1800.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of figures.")
@click.pass_obj
def drill_command(
    settings: Settings,
    *,
    documents: int,
    offices: int | None,
    workers: int,
    duplicates: int,
    broker: str,
    broker_outage_s: float,
    database_outage_s: float,
    destination_outage_s: float,
    database_url: str,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Carry N filings through broker, worker, database and destination failures."""
    plan = DrillPlan(
        documents, duplicates, broker, broker_outage_s, database_outage_s, destination_outage_s
    )
    if broker == "restart" and shutil.which("rabbitmqctl") is None:
        raise click.UsageError("--broker restart needs rabbitmqctl on PATH; use --broker cut")
    stop_on_sigterm()
    recreate_database(database_url)
    drill = Drill(_drill_settings(settings, database_url), offices, workers, plan)
    try:
        drill.start(serve=False)
        result = drill.run(timeout_s)
    finally:
        drill.stop()
    report(result, as_json)
    if not result.nothing_lost_nothing_doubled:
        raise SystemExit(1)


def _drill_settings(settings: Settings, database_url: str) -> Settings:
    demo = _demo_settings(settings)
    return demo.replace(
        queue_prefix=settings.queue_prefix + DRILL_QUEUE_SUFFIX,
        database_url=database_url,
        # Short tiers, so minutes of outage fit a drill (and its queues are removed after).
        retry_delays_s=DRILL_RETRY_DELAYS_S,
    )


def recreate_database(database_url: str) -> None:
    """Drop and create the drill's PostgreSQL database, so every run starts empty."""
    parts = urlsplit(database_url.replace("postgresql+psycopg://", "postgresql://"))
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def through_proxy(url: str, proxy: CuttableProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Drill(Demo):
    """The demo's hub and simulators, with the database and broker behind cuttable proxies."""

    def __init__(
        self, settings: Settings, offices: int | None, workers: int, plan: DrillPlan
    ) -> None:
        self.plan = plan
        self.direct_settings = settings
        database = urlsplit(settings.database_url)
        self.database_proxy = CuttableProxy(database.hostname or "127.0.0.1", database.port or 5432)
        proxied = settings.replace(
            database_url=through_proxy(settings.database_url, self.database_proxy)
        )
        self.broker_proxy: CuttableProxy | None = None
        if plan.broker == "cut":
            broker = urlsplit(settings.amqp_url)
            self.broker_proxy = CuttableProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
            proxied = proxied.replace(amqp_url=through_proxy(settings.amqp_url, self.broker_proxy))
        super().__init__(proxied, offices, workers)
        # The drill watches the database directly: its own view must survive the outage.
        self.store.close()
        self.store = Store.from_url(settings.database_url)
        self.source_digests: list[str] = []
        self.timeline = Timeline()

    def run(self, timeout_s: float) -> DrillResult:  # type: ignore[override]
        """Fill the mailboxes, inflict the faults while the documents flow, then count."""
        self.started_at = datetime.now(UTC)
        self.timeline = Timeline()
        feeder = threading.Thread(target=self._feed, name="drill-feeder", daemon=True)
        faults = threading.Thread(target=self._inflict_faults, name="drill-faults", daemon=True)
        feeder.start()
        faults.start()
        deadline = time.monotonic() + timeout_s
        feeder.join(timeout_s)
        faults.join(timeout_s)
        rows = self._wait_until_settled(len(self.source_digests), deadline)
        self.timeline.note(
            f"{sum(1 for row in rows if row.status in FINAL_STATUSES)} filings settled"
        )
        return self._count(rows)

    def _child_env(self, region_path: Any) -> dict[str, str]:
        return {
            **super()._child_env(region_path),
            # Short tiers and a quick circuit probe, so minutes of outage fit a drill.
            "HUB_RETRY_DELAYS_S": ",".join(str(delay) for delay in self.settings.retry_delays_s),
            "HUB_BREAKER_COOL_DOWN_S": "5",
            "HUB_BROKER_BACKOFF_MAX_S": "2",
            "HUB_DELIVERY_LEASE_S": "20",
        }

    def fault_span_s(self) -> float:
        """How long the fault steps take, start to end: the flow must cover all of it."""
        plan = self.plan
        pauses_s = FAULT_PAUSE_S * 5
        return pauses_s + plan.broker_outage_s + plan.database_outage_s + plan.destination_outage_s

    def _feed(self) -> None:
        """File the documents in waves, once a second, over the whole span of the faults."""
        waves = max(1, int(self.fault_span_s()))
        per_wave = [
            self.plan.documents // waves + (1 if wave < self.plan.documents % waves else 0)
            for wave in range(waves)
        ]
        for wave, count in enumerate(per_wave):
            if count:
                self.source_digests += self._enqueue_documents(count, seed=2028 + wave)
            time.sleep(1.0)
        self.timeline.note(f"all {len(self.source_digests)} filings are in the ePUAP mailboxes")

    def _enqueue_documents(self, count: int, seed: int) -> list[str]:
        offices = list(self.region.offices.values())
        mailboxes = [
            {
                "address": office.esp_address,
                "office_name": office.name,
                "office_teryt": office.id.replace("_", ""),
                "count": count // len(offices) + (1 if index < count % len(offices) else 0),
            }
            for index, office in enumerate(offices)
        ]
        response = requests.post(
            f"{self.urls['epuap']}/_sim/documents",
            json={"mailboxes": [box for box in mailboxes if box["count"]], "seed": seed},
            timeout=300,
        )
        response.raise_for_status()
        return [document["sha1_b64"] for document in response.json()["documents"]]

    def _inflict_faults(self) -> None:
        steps: list[Callable[[], None]] = [
            self._lose_epuap_confirmations,
            self._broker_outage,
            self._kill_a_worker,
            self._database_outage,
            self._destination_outage,
        ]
        for step in steps:
            time.sleep(FAULT_PAUSE_S)
            try:
                step()
            except (
                HubError,
                OSError,
                requests.RequestException,
                subprocess.SubprocessError,
            ) as exc:
                self.timeline.note(f"fault step {step.__name__} failed: {exc}")

    def _lose_epuap_confirmations(self) -> None:
        if not self.plan.duplicates:
            return
        requests.post(
            f"{self.urls['epuap']}/_sim/faults",
            json={
                "operation": "potwierdzOdebranie",
                "kind": "drop_confirm",
                "times": self.plan.duplicates,
            },
            timeout=30,
        ).raise_for_status()
        self.timeline.note(f"(e) ePUAP loses the next {self.plan.duplicates} receipt confirmations")

    def _broker_outage(self) -> None:
        if self.broker_proxy is not None:
            self.broker_proxy.cut()
            self.timeline.note("(a) broker: every connection cut")
            time.sleep(self.plan.broker_outage_s)
            self.broker_proxy.restore()
            self.timeline.note("(a) broker reachable again")
            return
        self.timeline.note("(a) broker: rabbitmqctl stop_app")
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
        time.sleep(self.plan.broker_outage_s)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
        self.timeline.note("(a) broker: rabbitmqctl start_app done")

    def _kill_a_worker(self) -> None:
        index = next(i for i, child in enumerate(self.children) if child.name.startswith("worker"))
        victim = self.children[index]
        replacement = start_hub_process(
            f"{victim.name}-restarted",
            ["worker"],
            self._child_env(self.settings.var_dir / "region.toml"),
            self.settings.var_dir / "logs",
        )
        self.children[index] = replacement
        victim.kill()
        self.timeline.note(f"(b) {victim.name} killed with SIGKILL; a new worker started")

    def _database_outage(self) -> None:
        self.database_proxy.cut()
        self.timeline.note("(c) database unreachable: every connection cut")
        time.sleep(self.plan.database_outage_s)
        self.database_proxy.restore()
        self.timeline.note("(c) database reachable again")

    def _destination_outage(self) -> None:
        eod = self.urls["eod"]
        requests.post(f"{eod}/_sim/faults", json={"kind": "down", "times": None}, timeout=30)
        self.timeline.note("(d) EOD down (503 to every delivery)")
        time.sleep(self.plan.destination_outage_s)
        requests.delete(f"{eod}/_sim/faults", timeout=30).raise_for_status()
        self.timeline.note("(d) EOD back")

    def _count(self, rows: list[Any]) -> DrillResult:
        registered: dict[str, int] = requests.get(
            f"{self.urls['eod']}/_sim/documents", timeout=60
        ).json()
        if len(set(self.source_digests)) != len(self.source_digests):
            # Two filings with one digest could not be told apart at the destination.
            raise HubError("the simulator generated two identical filings; change the seeds")
        counts = [registered.get(digest, 0) for digest in self.source_digests]
        served = requests.get(f"{self.urls['epuap']}/_sim/stats", timeout=30).json()
        return DrillResult(
            documents=len(self.source_digests),
            delivered_once=sum(1 for count in counts if count == 1),
            lost=sum(1 for count in counts if count == 0),
            doubled=sum(1 for count in counts if count > 1),
            dead=sum(1 for row in rows if row.status == "dead"),
            rejected=sum(1 for row in rows if row.status == "rejected"),
            served_again_by_epuap=_served_again(served, len(self.source_digests)),
            attempts_by_outcome=self._attempts_by_outcome(),
            elapsed_s=round(time.monotonic() - self.timeline.started, 1),
            database="postgresql",
            broker_fault=self.plan.broker,
            timeline=self.timeline.events,
        )

    def _attempts_by_outcome(self) -> dict[str, int]:
        with self.store.session() as session:
            rows = session.execute(
                select(AttemptRow.outcome, func.count()).group_by(AttemptRow.outcome)
            ).all()
        return {str(outcome): int(count) for outcome, count in rows}

    def stop(self) -> None:
        """Stop the processes, then the proxies."""
        super().stop()
        with contextlib.suppress(OSError):
            self.database_proxy.close()
        if self.broker_proxy is not None:
            with contextlib.suppress(OSError):
                self.broker_proxy.close()


def _served_again(stats: dict[str, Any], documents: int) -> int:
    """How many documents ePUAP served more than once (each later pull is a duplicate)."""
    served = int(stats.get("served", 0))
    return max(served - documents, 0)


def report(result: DrillResult, as_json: bool) -> None:
    """Print the per-destination table, then (with ``as_json``) one JSON line."""
    click.echo(f"{'destination':<12} {'documents':>9} {'once':>6} {'lost':>6} {'doubled':>8}")
    click.echo(
        f"{'EOD':<12} {result.documents:>9} {result.delivered_once:>6} "
        f"{result.lost:>6} {result.doubled:>8}"
    )
    verdict = "nothing lost, nothing doubled" if result.nothing_lost_nothing_doubled else "FAILED"
    click.echo(
        f"drill: {result.documents} filings on {result.database}, broker {result.broker_fault}, "
        f"{result.served_again_by_epuap} served again by ePUAP, {result.dead} dead, "
        f"{result.rejected} rejected, {result.elapsed_s} s: {verdict}"
    )
    outcomes = ", ".join(
        f"{count} {name}" for name, count in sorted(result.attempts_by_outcome.items())
    )
    click.echo(f"drill: delivery attempts: {outcomes}")
    if as_json:
        figures = asdict(result) | {"ok": result.nothing_lost_nothing_doubled}
        click.echo(json.dumps(figures))
