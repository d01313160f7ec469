"""The hub's core path beside a Celery 5 peer with the same guarantees, and the path's ceiling.

In one run, on PostgreSQL, against the same RabbitMQ and the same EOD simulator program
(checking every seal: ``--trust-ca``/``--require-seal``):

1. the hub's core path (``core_path.py``): N stored documents → ``hub relay`` →
   ``hub worker`` × W (route: well-formed check, signature check, XAdES seal) → EOD;
2. the peer (``peer_celery_app.py``): the same N documents stored in a database of its
   own on the same server → a producer publishing one task each with publisher confirms
   → Celery workers (``acks_late``, ``reject_on_worker_lost``, prefetch 1; W workers ×
   the hub's worker threads as prefork processes, or threads) running the hub's own
   route steps, POSTing to the EOD and committing an idempotency row with the delivered
   state in one transaction;
3. the bare stages one document must pay on this path, each alone, for the ceiling.

For both runs it prints docs/s and CPU ms per document over the whole machine (busy
jiffies of ``/proc/stat``, so the broker, PostgreSQL and the EOD count), the CPU of each
process, and the hub/peer ratios; then the stages and the stage-sum ceiling (see
``benchmarks/README.md`` for how it is computed). Each run must deliver every document
exactly once at the EOD, or the script exits 1.

    .venv/bin/python benchmarks/peer_celery.py [--documents 3000] [--workers 2] [--json]

Benchmarks print figures; they never assert timings.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pika
import psycopg
from sqlalchemy.engine import make_url

# First of the hub's imports: benchmarks/mappings.py must not stand in for the package.
import hub_packages  # noqa: F401  # isort: skip
from hub.envelope import Address, Envelope
from hub.http import http_session
from hub.runtime import route_steps
from hub.settings import Settings
from hub.signing.keystore import init_test_pki
from hub.signing.seal import SEALED_CONTENT_TYPE
from hub.signing.steps import Step
from hub.store.repository import aware
from simulators.processes import ChildProcess, start_simulator, stop_all

# Run as a script, benchmarks/ is on sys.path, so its sibling modules import by name.
from core_path import (  # isort: skip
    CoreRunFailed,
    CoreRunPlan,
    CoreRunResult,
    DeliveryTimes,
    check_exactly_once,
    child_pids,
    core_figures,
    core_settings,
    core_work_dir,
    eod_region,
    generated_documents,
    measure_hub_core,
    received_at_eod,
    sealed_eod_arguments,
)
from cpu_usage import RunCpu, RunCpuProbe, busy_ms_between, cpu_by_group, snapshot  # isort: skip
from demo_throughput import (  # isort: skip
    DEFAULT_AMQP_URL,
    DEFAULT_POSTGRES_URL,
    fresh_postgres_database,
    http_post_rate,
    libpq_url,
    measure_postgres_commits,
    measure_rabbitmq,
    positive_int,
    rate_per_second,
)
from peer_celery_app import ROUTE_STEPS, SCHEMA  # isort: skip

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
POLL_INTERVAL_S = 0.1
TIMEOUT_S = 600.0
POOLS = ("prefork", "threads")
# Started from the repository's root as a package module, so that benchmarks/mappings.py
# cannot shadow the hub's mappings package in the peer's processes.
PEER_APP_MODULE = "benchmarks.peer_celery_app"


@dataclass(frozen=True)
class PeerRunPlan:
    """The peer's run: the core plan's sizes, plus how Celery runs its workers."""

    core: CoreRunPlan
    pool: str
    concurrency: int  # per worker process: prefork children, or threads
    queue: str = field(default_factory=lambda: f"bench-peer-{secrets.token_hex(4)}")


@dataclass(frozen=True)
class Stage:
    """One bare stage a document pays once: its rate alone, its wall and CPU time each.

    ``cpu_ms`` is the whole machine's busy time per operation; ``run_cpu_ms`` only that
    of the processes the stage runs in (the benchmark's own, and the broker, PostgreSQL
    or the EOD simulator it talks to), which other work on the machine does not inflate.
    """

    name: str
    per_s: float
    wall_ms: float
    cpu_ms: float
    run_cpu_ms: float

    def as_dict(self) -> dict[str, float]:
        """The figures as a JSON-ready dict."""
        return {
            "per_s": self.per_s,
            "wall_ms": self.wall_ms,
            "cpu_ms": self.cpu_ms,
            "run_cpu_ms": self.run_cpu_ms,
        }


@dataclass(frozen=True)
class Ceiling:
    """The stages of the path, and what their sums allow."""

    stages: list[Stage]
    cores: int

    @property
    def cpu_ms_per_doc(self) -> float:
        """Processor time one document must cost the processes that carry it, at least."""
        return sum(stage.run_cpu_ms for stage in self.stages)

    @property
    def machine_cpu_ms_per_doc(self) -> float:
        """The same, from the whole machine's busy time (other work included)."""
        return sum(stage.cpu_ms for stage in self.stages)

    @property
    def wall_ms_per_doc(self) -> float:
        """Time one document takes with its stages one after the other, alone."""
        return sum(stage.wall_ms for stage in self.stages)

    @property
    def docs_per_s(self) -> float:
        """The ceiling: the machine's cores ÷ the CPU one document must cost."""
        return round(self.cores * 1000 / self.cpu_ms_per_doc, 1)

    @property
    def serial_docs_per_s(self) -> float:
        """One document at a time, each stage after the other: 1 ÷ the wall-time sum."""
        return round(1000 / self.wall_ms_per_doc, 1)


@dataclass
class Comparison:
    """Everything one run measured."""

    parameters: dict[str, Any]
    hub: CoreRunResult | None = None
    hub_cpu: RunCpu | None = None
    peer: CoreRunResult | None = None
    peer_cpu: RunCpu | None = None
    ceiling: Ceiling | None = None


# --- command line -------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Sizes, concurrency, services and output format."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=positive_int, default=3000)
    # The hub declares a delivery queue per endpoint (about 5.6 per office) plus 6: five
    # offices keep its run at 34 queues, well inside a stock-limited broker.
    parser.add_argument("--offices", type=positive_int, default=5)
    parser.add_argument("--workers", type=positive_int, default=2, help="hub workers, peer nodes")
    parser.add_argument(
        "--peer-pool",
        choices=POOLS,
        default="prefork",
        help="prefork (reject_on_worker_lost works) or threads (the hub's shape)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--amqp-url", default=os.environ.get("HUB_AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument("--stage-documents", type=positive_int, default=500, help="route steps")
    parser.add_argument("--broker-messages", type=positive_int, default=2000)
    parser.add_argument("--postgres-rows", type=positive_int, default=1000)
    parser.add_argument("--http-requests", type=positive_int, default=1000)
    parser.add_argument("--timeout-s", type=float, default=TIMEOUT_S)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    return parser.parse_args(argv)


def hub_worker_threads() -> int:
    """The consumer threads each ``hub worker`` runs, as its settings will say."""
    return int(Settings.load(environ=dict(os.environ)).worker_threads)


# --- the hub ------------------------------------------------------------------------


def run_hub(arguments: argparse.Namespace, report: Comparison) -> None:
    """The hub's core path on a fresh PostgreSQL database, with its CPU."""
    print("running the hub's core path ...", file=sys.stderr, flush=True)
    probe = RunCpuProbe()
    with core_work_dir() as work_dir, fresh_postgres_database(arguments.postgres_url) as url:
        plan = core_plan(arguments, url, work_dir)
        report.hub = measure_hub_core(plan, probe)
    report.hub_cpu = probe.figures(arguments.documents)


def core_plan(arguments: argparse.Namespace, database_url: str, work_dir: Path) -> CoreRunPlan:
    """The sizes both runs share."""
    return CoreRunPlan(
        database_url=database_url,
        amqp_url=arguments.amqp_url,
        documents=arguments.documents,
        offices=arguments.offices,
        workers=arguments.workers,
        work_dir=work_dir,
        timeout_s=arguments.timeout_s,
    )


# --- the peer -----------------------------------------------------------------------


def run_peer(arguments: argparse.Namespace, report: Comparison) -> None:
    """The Celery peer on a fresh PostgreSQL database, with its CPU."""
    print("running the Celery peer ...", file=sys.stderr, flush=True)
    probe = RunCpuProbe()
    with core_work_dir() as work_dir, fresh_postgres_database(arguments.postgres_url) as url:
        plan = PeerRunPlan(
            core=core_plan(arguments, url, work_dir),
            pool=arguments.peer_pool,
            concurrency=hub_worker_threads(),
        )
        report.peer = measure_peer(plan, probe)
    report.peer_cpu = probe.figures(arguments.documents)


def measure_peer(plan: PeerRunPlan, probe: RunCpuProbe) -> CoreRunResult:
    """Preload, run producer and Celery workers until all is delivered, check, measure.

    Raises:
        CoreRunFailed: a process died, the run timed out, or the EOD did not receive
            every document exactly once.
    """
    core = plan.core
    settings = core_settings(core)
    database = peer_database_url(core.database_url)
    init_test_pki(settings.keys, settings.trust, ["hub"])
    children: list[ChildProcess] = []
    try:
        eod, eod_url = start_simulator("simulators.eod", *sealed_eod_arguments(settings))
        children.append(eod)
        region = eod_region(settings, eod_url, core.offices)
        document_ids, mean_body_bytes = preload_peer_documents(database, region, core.documents)
        declare_peer_queue(core.amqp_url, plan.queue)
        probe.started()
        started_at = datetime.now(UTC)
        children += start_peer_processes(plan, settings, database, eod_url)
        wait_until_peer_delivered(database, plan, children, probe)
        probe.finished(child_pids(children))
        times = peer_delivery_times(database)
        arrivals = received_at_eod(eod_url)
    finally:
        stop_all(children)
        delete_peer_queue(core.amqp_url, plan.queue)
    check_exactly_once(document_ids, arrivals, core.log_dir)
    return core_figures(core, started_at, times, mean_body_bytes)


def peer_database_url(sqlalchemy_url: str) -> str:
    """The libpq URL psycopg (and the peer) connect with, for the run's database."""
    return libpq_url(sqlalchemy_url, make_url(sqlalchemy_url).database or "postgres")


def preload_peer_documents(database_url: str, region: Any, count: int) -> tuple[list[str], int]:
    """The peer's schema and the hub's N documents, stored as accepted (not timed)."""
    document_ids: list[str] = []
    body_bytes = 0
    with psycopg.connect(database_url) as connection:
        connection.execute(SCHEMA)
        with connection.cursor() as cursor:
            rows = []
            for envelope in generated_documents(region, count):
                document_ids.append(str(envelope.envelope_id))
                body_bytes += len(envelope.body)
                rows.append(
                    (
                        envelope.envelope_id,
                        envelope.correlation_id,
                        envelope.document_type,
                        envelope.source,
                        envelope.destination.office,
                        envelope.content_type,
                        envelope.body,
                    )
                )
            cursor.executemany(
                "INSERT INTO peer_documents (id, correlation_id, document_type, source, office,"
                " content_type, body) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    return document_ids, round(body_bytes / max(count, 1))


def start_peer_processes(
    plan: PeerRunPlan, settings: Settings, database_url: str, eod_url: str
) -> list[ChildProcess]:
    """Start ``plan.core.workers`` Celery worker nodes and the producer."""
    env = {
        "PEER_BROKER_URL": plan.core.amqp_url,
        "PEER_QUEUE": plan.queue,
        "PEER_DATABASE_URL": database_url,
        "PEER_EOD_URL": eod_url,
        "PEER_VAR_DIR": str(settings.var_dir),
    }
    children = []
    for number in range(plan.core.workers):
        command = [
            "-m", "celery", "-A", PEER_APP_MODULE, "worker",
            "--pool", plan.pool, "--concurrency", str(plan.concurrency),
            "--hostname", f"peer-{number}@%h", "--queues", plan.queue,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        children.append(start_logged(f"peer-worker-{number}", command, env, plan.core.log_dir))
    producer = ["-m", PEER_APP_MODULE, "produce"]
    children.append(start_logged("producer", producer, env, plan.core.log_dir))
    return children


def start_logged(
    name: str, arguments: list[str], env: dict[str, str], log_dir: Path
) -> ChildProcess:
    """Run ``python <arguments>`` from the repository's root with ``env`` added.

    Its output goes to ``log_dir/<name>.log``.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, *arguments],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ChildProcess(name, process, log_path)


def wait_until_peer_delivered(
    database_url: str, plan: PeerRunPlan, children: Sequence[ChildProcess], probe: RunCpuProbe
) -> None:
    """Poll until every document is delivered; fail on a dead process or a timeout."""
    deadline = time.monotonic() + plan.core.timeout_s
    with psycopg.connect(database_url, autocommit=True) as observer:
        while time.monotonic() < deadline:
            delivered = peer_delivered_count(observer)
            probe.polled(delivered)
            if delivered >= plan.core.documents:
                return
            exited = [child.name for child in children if not child.alive()]
            if exited:
                raise CoreRunFailed(f"process(es) exited early: {exited}; see {plan.core.log_dir}")
            time.sleep(POLL_INTERVAL_S)
        raise CoreRunFailed(
            f"not all delivered within {plan.core.timeout_s} s: "
            f"{peer_delivered_count(observer)}; see {plan.core.log_dir}"
        )


def peer_delivered_count(observer: psycopg.Connection[Any]) -> int:
    """How many of the peer's documents are delivered."""
    row = observer.execute(
        "SELECT count(*) FROM peer_documents WHERE status = 'delivered'"
    ).fetchone()
    return int(row[0]) if row else 0


def peer_delivery_times(database_url: str) -> DeliveryTimes:
    """Received and delivered moments of every delivered document."""
    times = DeliveryTimes(received=[], delivered=[])
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT received_at, delivered_at FROM peer_documents WHERE status = 'delivered'"
        )
        for received_at, delivered_at in rows:
            times.received.append(aware(received_at))
            times.delivered.append(aware(delivered_at))
    return times


def declare_peer_queue(amqp_url: str, queue: str) -> None:
    """Declare the peer's quorum queue and its exchange, as Celery will declare them."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.exchange_declare(queue, "direct", durable=True)
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(queue, queue, routing_key=queue)
    finally:
        connection.close()


def delete_peer_queue(amqp_url: str, queue: str) -> None:
    """Remove the peer's queue and exchange; warn, do not fail, if the broker is gone."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except pika.exceptions.AMQPError as exc:
        print(f"queue {queue} left behind: {exc!r}", file=sys.stderr)
        return
    try:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
    finally:
        connection.close()


# --- the ceiling --------------------------------------------------------------------


def measure_ceiling(arguments: argparse.Namespace) -> Ceiling:
    """The bare stages one document must pay on this path, each measured alone."""
    print("measuring the bare stages ...", file=sys.stderr, flush=True)
    with core_work_dir() as work_dir:
        plan = core_plan(arguments, "", work_dir)
        settings = core_settings(plan)
        init_test_pki(settings.keys, settings.trust, ["hub"])
        eod, eod_url = start_simulator("simulators.eod", *sealed_eod_arguments(settings))
        try:
            stages, sealed = route_step_stages(settings, eod_url, arguments)
            stages.append(database_stage(arguments))
            stages.append(broker_stage(arguments))
            stages.append(http_stage(eod_url, eod.process.pid, sealed, arguments.http_requests))
        finally:
            eod.stop()
    return Ceiling(stages, os.cpu_count() or 1)


def timed_stage(
    name: str,
    count: int,
    measure: Callable[[], float],
    counted: tuple[str, ...] = (),
    eod_pid: int | None = None,
) -> Stage:
    """Run ``measure()`` (ops/s for ``count`` ops), reading the processors' time.

    Args:
        name: what the stage is.
        count: how many operations ``measure`` makes.
        measure: makes them; returns their rate.
        counted: the groups of processes (``broker``, ``postgresql``, ``eod``) whose CPU
            counts for the stage besides the benchmark's own.
        eod_pid: the EOD simulator's process, when ``eod`` is counted.
    """
    before = snapshot()
    per_s = measure()
    after = snapshot()
    roots = {"eod": [eod_pid]} if eod_pid is not None else {}
    by_group = cpu_by_group(before, after, {**roots, "benchmark": [os.getpid()]})
    run_ms = sum(by_group.get(group, 0.0) for group in ("benchmark", *counted))
    return Stage(
        name,
        round(per_s, 1),
        round(1000 / per_s, 3),
        round(busy_ms_between(before, after) / count, 3),
        round(run_ms / count, 3),
    )


def route_step_stages(
    settings: Settings, eod_url: str, arguments: argparse.Namespace
) -> tuple[list[Stage], bytes]:
    """The hub's route steps for a pismo ogólne to an EOD, each on its predecessor's output.

    Returns the stages and the sealed delivery the last step made (for the HTTP stage).
    """
    region = eod_region(settings, eod_url, 1)
    envelope = next(generated_documents(region, 1))
    envelope = envelope.with_destination(Address(envelope.destination.office, "eod"))
    steps = route_steps(settings)
    count = arguments.stage_documents
    stages = []
    for name in ROUTE_STEPS:
        step = steps[name]
        output = step(envelope)  # also the warm-up: the first seal loads the hub's key
        stages.append(timed_stage(name, count, step_rate(step, envelope, count)))
        envelope = output
    return stages, envelope.body


def step_rate(step: Step, envelope: Envelope, count: int) -> Callable[[], float]:
    """A measurement of ``step`` applied ``count`` times to ``envelope``, in calls/s."""
    return lambda: rate_per_second(count, lambda _: step(envelope))


def database_stage(arguments: argparse.Namespace) -> Stage:
    """One one-row commit to PostgreSQL (5 KB), in a database of its own."""
    rows = arguments.postgres_rows
    with fresh_postgres_database(arguments.postgres_url) as database_url:
        return timed_stage(
            "postgresql one-row commit",
            rows,
            lambda: measure_postgres_commits(database_url, rows),
            counted=("postgresql",),
        )


def broker_stage(arguments: argparse.Namespace) -> Stage:
    """One persistent publish with a blocking confirm plus one manually acked consume."""
    count = arguments.broker_messages
    rates: dict[str, float] = {}

    def pair_rate() -> float:
        rates.update(measure_rabbitmq(arguments.amqp_url, count))
        publish = rates["rabbitmq_confirmed_publishes_per_s"]
        consume = rates["rabbitmq_acked_consumes_per_s"]
        return 1 / (1 / publish + 1 / consume)

    return timed_stage(
        "rabbitmq confirmed publish + acked consume", count, pair_rate, counted=("broker",)
    )


def http_stage(eod_url: str, eod_pid: int, sealed: bytes, count: int) -> Stage:
    """One POST of the sealed delivery to the EOD, which checks the seal."""
    return timed_stage(
        "http post of the sealed delivery (EOD checks the seal)",
        count,
        # The hub's own session (proxies resolved once), as its EOD adapter and the peer use.
        lambda: http_post_rate(eod_url, count, sealed, SEALED_CONTENT_TYPE, http_session(eod_url)),
        counted=("eod",),
        eod_pid=eod_pid,
    )


# --- output -------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to 3 places, or None without both."""
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def headline(report: Comparison) -> dict[str, Any]:
    """The figures the issue names: steady docs/s and CPU ms/doc, their ratios, the ceiling."""
    hub, peer, ceiling = report.hub, report.peer, report.ceiling
    hub_cpu, peer_cpu = report.hub_cpu, report.peer_cpu
    figures: dict[str, Any] = {
        "hub_docs_per_s": hub.docs_per_s_after_first_delivery if hub else None,
        "peer_docs_per_s": peer.docs_per_s_after_first_delivery if peer else None,
        "hub_cpu_ms_per_doc": hub_cpu.steady_cpu_ms_per_doc if hub_cpu else None,
        "peer_cpu_ms_per_doc": peer_cpu.steady_cpu_ms_per_doc if peer_cpu else None,
        "hub_run_cpu_ms_per_doc": hub_cpu.steady_run_cpu_ms_per_doc if hub_cpu else None,
        "peer_run_cpu_ms_per_doc": peer_cpu.steady_run_cpu_ms_per_doc if peer_cpu else None,
        "ceiling_docs_per_s": ceiling.docs_per_s if ceiling else None,
        "serial_docs_per_s": ceiling.serial_docs_per_s if ceiling else None,
    }
    figures["hub_peer_docs_ratio"] = ratio(figures["hub_docs_per_s"], figures["peer_docs_per_s"])
    figures["hub_peer_cpu_ratio"] = ratio(
        figures["hub_cpu_ms_per_doc"], figures["peer_cpu_ms_per_doc"]
    )
    figures["hub_peer_run_cpu_ratio"] = ratio(
        figures["hub_run_cpu_ms_per_doc"], figures["peer_run_cpu_ms_per_doc"]
    )
    figures["hub_ceiling_ratio"] = ratio(figures["hub_docs_per_s"], figures["ceiling_docs_per_s"])
    figures["peer_ceiling_ratio"] = ratio(figures["peer_docs_per_s"], figures["ceiling_docs_per_s"])
    return figures


def print_report(report: Comparison) -> None:
    """The tables a person reads."""
    size = report.parameters
    print(
        f"\ncore path on PostgreSQL: {size['documents']} documents, {size['offices']} offices; "
        f"hub: {size['workers']} workers x {size['hub_worker_threads']} threads; "
        f"peer: Celery {size['celery']}, {size['workers']} workers x "
        f"{size['hub_worker_threads']} {size['peer_pool']}"
    )
    print(
        f"{'':<10}{'docs/s':>9}{'steady/s':>10}{'1st s':>8}{'elapsed s':>11}"
        f"{'CPU ms/doc':>12}{'steady CPU':>12}{'steady run CPU':>16}"
    )
    runs = (("hub", report.hub, report.hub_cpu), ("peer", report.peer, report.peer_cpu))
    for label, run, cpu in runs:
        if run is not None and cpu is not None:
            print(
                f"{label:<10}{run.docs_per_s:>9}{run.docs_per_s_after_first_delivery:>10}"
                f"{run.first_delivery_s:>8}{run.elapsed_s:>11}{cpu.cpu_ms_per_doc:>12}"
                f"{cpu.steady_cpu_ms_per_doc!s:>12}{cpu.steady_run_cpu_ms_per_doc!s:>16}"
            )
    figures = headline(report)
    print(
        f"hub/peer: docs/s {figures['hub_peer_docs_ratio']}, "
        f"CPU ms/doc {figures['hub_peer_cpu_ratio']}, run CPU ms/doc "
        f"{figures['hub_peer_run_cpu_ratio']} (steady figures)"
    )
    print("  CPU: busy jiffies of the whole machine (/proc/stat), so the broker, PostgreSQL,")
    print("  the EOD and anything else running on the machine count; steady: from the 1st")
    print("  delivery on, as steady/s; run CPU: the run's processes, broker and PostgreSQL only")
    for label, cpu in (("hub", report.hub_cpu), ("peer", report.peer_cpu)):
        if cpu is not None:
            parts = ", ".join(f"{name} {ms:.0f}" for name, ms in cpu.by_process_ms.items())
            print(f"  {label} CPU ms by process over the run: {parts}")
    if report.ceiling is not None:
        print_ceiling(report.ceiling, figures)


def print_ceiling(ceiling: Ceiling, figures: dict[str, Any]) -> None:
    """The stages and the ceiling their sum allows."""
    print("\nbare stages one document pays (each alone, this run)")
    print(f"  {'stage':<56}{'per s':>9}{'wall ms':>10}{'CPU ms':>9}{'machine':>9}")
    for stage in ceiling.stages:
        print(
            f"  {stage.name:<56}{stage.per_s:>9}{stage.wall_ms:>10}{stage.run_cpu_ms:>9}"
            f"{stage.cpu_ms:>9}"
        )
    print(
        f"  {'sum':<56}{'':>9}{round(ceiling.wall_ms_per_doc, 3):>10}"
        f"{round(ceiling.cpu_ms_per_doc, 3):>9}{round(ceiling.machine_cpu_ms_per_doc, 3):>9}"
    )
    print("  CPU ms: of the processes the stage runs in; machine: all busy time (other work too)")
    print(
        f"ceiling: {ceiling.cores} cores / {ceiling.cpu_ms_per_doc:.3f} CPU ms = "
        f"{ceiling.docs_per_s} docs/s (one at a time: 1 / {ceiling.wall_ms_per_doc:.3f} ms = "
        f"{ceiling.serial_docs_per_s} docs/s)"
    )
    print(
        f"hub/ceiling {figures['hub_ceiling_ratio']}, peer/ceiling {figures['peer_ceiling_ratio']}"
    )


def report_as_json(report: Comparison) -> dict[str, Any]:
    """The headline figures first, then everything measured."""
    ceiling = report.ceiling
    return {
        **headline(report),
        "parameters": report.parameters,
        "hub": report.hub.as_dict() if report.hub else None,
        "hub_cpu": report.hub_cpu.as_dict() if report.hub_cpu else None,
        "peer": report.peer.as_dict() if report.peer else None,
        "peer_cpu": report.peer_cpu.as_dict() if report.peer_cpu else None,
        "stages": {stage.name: stage.as_dict() for stage in ceiling.stages} if ceiling else {},
        "cores": ceiling.cores if ceiling else os.cpu_count(),
    }


# --- putting it together ------------------------------------------------------------


def run_benchmark(arguments: argparse.Namespace) -> Comparison:
    """The hub, the peer and the stages, one after the other, in one run."""
    parameters = {
        "documents": arguments.documents,
        "offices": arguments.offices,
        "workers": arguments.workers,
        "hub_worker_threads": hub_worker_threads(),
        "peer_pool": arguments.peer_pool,
        "database": "postgresql",
        "celery": metadata.version("celery"),
    }
    report = Comparison(parameters)
    try:
        run_hub(arguments, report)
        run_peer(arguments, report)
    except CoreRunFailed as exc:
        print(f"core path run failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    report.ceiling = measure_ceiling(arguments)
    return report


def main(argv: list[str] | None = None) -> None:
    """Run, print the tables and, with --json, one JSON line last."""
    arguments = parse_arguments(argv)
    report = run_benchmark(arguments)
    print_report(report)
    if arguments.json:
        print(json.dumps(report_as_json(report)))


if __name__ == "__main__":
    main()
