"""The hub's own core, without the inbox: stored documents → relay → RabbitMQ → workers → EOD.

``hub demo`` is bounded by the simulated ePUAP inbox (the SOAP pull through zeep costs
more CPU than the rest of the path), which hides what the hub itself can carry. This
module preloads N accepted documents into a freshly migrated store, starts the outbox
relay and W workers against an EOD simulator, and times the run until every document
is ``delivered``. It then checks at the EOD that each document arrived exactly once.

Timing: the clock starts just before the hub processes are launched, so ``elapsed_s``
and ``docs_per_s`` include their start-up; ``docs_per_s_after_first_delivery`` leaves
it out (documents after the first, divided by the time from the first delivery to the
last). Both come from the ``delivered_at`` timestamps the workers write; the database
is polled every 0.1 s only to notice the end.

The received → delivered percentiles are reported as ``backlog_wait_*``: every document
was stored before the hub started, so they mostly measure how long a document waited in
the backlog (preload included), not how long the hub takes with one document.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy
from sqlalchemy import func, select

from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.envelope import Address, Envelope
from hub.errors import BrokerUnavailable
from hub.region import Region, load_region
from hub.region_render import render_region
from hub.settings import Settings
from hub.signing.keystore import init_test_pki
from hub.states import MessageStatus
from hub.store.migrate import upgrade_database
from hub.store.models import MessageRow
from hub.store.repository import AcceptOutcome, Store, aware
from simulators.epuap.documents import generate_pismo_ogolne
from simulators.processes import ChildProcess, start_hub_process, start_simulator, stop_all

# Run as a script, benchmarks/ is on sys.path, so its sibling module imports by name.
from cpu_usage import RunCpuProbe  # isort: skip

PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
DOCUMENT_SOURCE = "epuap"
DOCUMENT_SEED = 2026  # the demo's seed, so the bodies look like the demo's
POLL_INTERVAL_S = 0.1
TIMEOUT_S = 600.0
UNFINISHED_STATUSES = {MessageStatus.DEAD, MessageStatus.REJECTED}


class CoreRunFailed(RuntimeError):
    """The core run did not deliver every document exactly once (or could not run)."""


@dataclass(frozen=True)
class CoreRunPlan:
    """What one core run does: where its store is, how much to carry, with how many workers."""

    database_url: str
    amqp_url: str
    documents: int
    offices: int
    workers: int
    work_dir: Path
    timeout_s: float = TIMEOUT_S

    @property
    def log_dir(self) -> Path:
        """Where the relay's and workers' logs go."""
        return self.work_dir / "logs"


@dataclass(frozen=True)
class CoreRunResult:
    """The figures of one core run (see the module docstring for what each one covers)."""

    documents: int
    offices: int
    workers: int
    mean_body_bytes: int
    elapsed_s: float
    docs_per_s: float
    first_delivery_s: float
    docs_per_s_after_first_delivery: float
    backlog_wait_p50_ms: float
    backlog_wait_p99_ms: float
    exactly_once: bool = True  # a run that is not exactly once raises instead

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class DeliveryTimes:
    """When each delivered document was received and delivered, as the store recorded it."""

    received: list[datetime]
    delivered: list[datetime]


# --- the run ------------------------------------------------------------------------


@contextlib.contextmanager
def core_work_dir() -> Iterator[Path]:
    """A temporary directory for a core run; kept (for its logs) if the run fails."""
    directory = Path(tempfile.mkdtemp(prefix="hub-bench-core-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def sqlite_url_in(directory: Path) -> str:
    """The URL of a fresh SQLite store file in ``directory``."""
    return f"sqlite:///{(directory / 'hub.db').resolve()}"


def measure_hub_core(plan: CoreRunPlan, probe: RunCpuProbe | None = None) -> CoreRunResult:
    """Preload, run relay and workers until all is delivered, check exactly-once, measure.

    With ``probe``, the processors' time is read from the launch of the hub's processes
    to the end of the run (``peer_celery.py`` sets it beside its peer's).

    Raises:
        CoreRunFailed: a hub process died, documents went dead or were rejected, the run
            timed out, or the EOD did not receive every document exactly once.
    """
    settings = core_settings(plan)
    upgrade_database(settings)
    store = Store.from_url(plan.database_url)
    observer = sqlalchemy.create_engine(plan.database_url)
    children: list[ChildProcess] = []
    region: Region | None = None
    try:
        # The workers seal every delivery with the hub's key, and the EOD checks each
        # seal, as in the demo: the path measured is the path the hub runs.
        init_test_pki(settings.keys, settings.trust, ["hub"])
        eod, eod_url = start_simulator("simulators.eod", *sealed_eod_arguments(settings))
        children.append(eod)
        region = eod_region(settings, eod_url, plan.offices)
        region_path = write_region(region, plan.work_dir)
        message_ids, mean_body_bytes = preload_documents(store, region, plan.documents)
        if probe is not None:
            probe.started()
        started_at = datetime.now(UTC)
        children += start_core_processes(plan, settings, region_path)
        wait_until_delivered(observer, plan, children, probe)
        if probe is not None:
            probe.finished(child_pids(children))
        times = delivery_times(observer)
        arrivals = received_at_eod(eod_url)
    finally:
        stop_all(children)
        if region is not None:
            delete_queues(settings, region)
        observer.dispose()
        store.close()
    check_exactly_once(message_ids, arrivals, plan.log_dir)
    return core_figures(plan, started_at, times, mean_body_bytes)


def core_settings(
    plan: CoreRunPlan, prefix: str = "bench-core", extra_env: Mapping[str, str] | None = None
) -> Settings:
    """The hub's settings for this run: its store, broker and a queue prefix of its own.

    ``prefix`` starts the queue prefix (a random part follows); ``extra_env`` adds
    ``HUB_*`` settings (``isolation.py`` sets the breaker's cool-down).
    """
    return Settings.load(
        environ={
            "HUB_DATABASE_URL": plan.database_url,
            "HUB_AMQP_URL": plan.amqp_url,
            "HUB_QUEUE_PREFIX": f"{prefix}-{secrets.token_hex(4)}",
            "HUB_VAR_DIR": str(plan.work_dir),
            **(extra_env or {}),
        }
    )


def sealed_eod_arguments(settings: Settings) -> tuple[str, ...]:
    """The EOD simulator's options to check the hub's seal on every delivery."""
    return ("--trust-ca", str(settings.keys / "ca.pem"), "--require-seal")


def eod_region(settings: Settings, eod_url: str, office_count: int) -> Region:
    """The embedded region, its EOD endpoints pointing at the simulator, cut to K offices."""
    region = load_region(settings.region_path, environ={"HUB_EOD_URL": eod_url})
    office_ids = list(region.offices)[:office_count]
    return region.restricted_to(office_ids)


def write_region(region: Region, directory: Path) -> Path:
    """Write ``region`` as ``region.toml`` in ``directory``; return its path."""
    path = directory / "region.toml"
    path.write_text(render_region(region), encoding="utf-8")
    return path


def generated_documents(region: Region, count: int) -> Iterator[Envelope]:
    """``count`` pisma ogólne as envelopes, round-robin over the offices, always the same.

    The bodies come from one seeded generator, so every run (the hub's and its peer's)
    carries the same documents.
    """
    rng = random.Random(DOCUMENT_SEED)
    offices = list(region.offices.values())
    for index in range(count):
        office = offices[index % len(offices)]
        body = generate_pismo_ogolne(
            rng, office_name=office.name, office_teryt=office.id.replace("_", "")
        ).content
        yield Envelope(
            document_type=PISMO_OGOLNE,
            source=DOCUMENT_SOURCE,
            destination=Address(office.id),
            body=body,
        )


def preload_documents(store: Store, region: Region, count: int) -> tuple[list[str], int]:
    """Store ``count`` accepted pisma ogólne, round-robin over the offices (not timed).

    Returns the message ids and the mean body size in bytes.
    """
    message_ids: list[str] = []
    body_bytes = 0
    for index, envelope in enumerate(generated_documents(region, count)):
        if store.accept(envelope) is not AcceptOutcome.ACCEPTED:
            raise CoreRunFailed(f"the store did not accept preloaded document {index}")
        message_ids.append(str(envelope.envelope_id))
        body_bytes += len(envelope.body)
    return message_ids, round(body_bytes / max(count, 1))


def start_core_processes(
    plan: CoreRunPlan,
    settings: Settings,
    region_path: Path,
    extra_env: Mapping[str, str] | None = None,
) -> list[ChildProcess]:
    """Start ``hub relay`` and ``plan.workers`` × ``hub worker``, logging JSON warnings.

    ``extra_env`` adds ``HUB_*`` settings the processes run with.
    """
    env = {
        "HUB_DATABASE_URL": plan.database_url,
        "HUB_AMQP_URL": plan.amqp_url,
        "HUB_QUEUE_PREFIX": settings.queue_prefix,
        "HUB_REGION_PATH": str(region_path),
        "HUB_VAR_DIR": str(plan.work_dir),
        "HUB_LOG_LEVEL": "warning",
        "HUB_LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    children = [start_hub_process("relay", ["relay"], env, plan.log_dir)]
    for number in range(plan.workers):
        children.append(start_hub_process(f"worker-{number}", ["worker"], env, plan.log_dir))
    return children


def child_pids(children: Sequence[ChildProcess]) -> dict[str, int]:
    """Each child's name and process id, for the CPU probe."""
    return {child.name: child.process.pid for child in children}


def wait_until_delivered(
    observer: sqlalchemy.Engine,
    plan: CoreRunPlan,
    children: Sequence[ChildProcess],
    probe: RunCpuProbe | None = None,
) -> None:
    """Poll until every document is delivered; fail on a dead process, dead letters or timeout."""
    deadline = time.monotonic() + plan.timeout_s
    while time.monotonic() < deadline:
        counts = status_counts(observer)
        delivered = counts.get(MessageStatus.DELIVERED, 0)
        if probe is not None:
            probe.polled(delivered)
        if delivered >= plan.documents:
            return
        stuck = {status: counts[status] for status in UNFINISHED_STATUSES if counts.get(status)}
        if stuck:
            raise CoreRunFailed(f"documents will never be delivered: {stuck}; see {plan.log_dir}")
        exited = [child.name for child in children if not child.alive()]
        if exited:
            raise CoreRunFailed(f"process(es) exited early: {exited}; see {plan.log_dir}")
        time.sleep(POLL_INTERVAL_S)
    raise CoreRunFailed(
        f"not all delivered within {plan.timeout_s} s: {status_counts(observer)}; "
        f"see {plan.log_dir}"
    )


def status_counts(observer: sqlalchemy.Engine) -> dict[str, int]:
    """How many messages stand in each status.

    Read on a plain engine of its own: the store's SQLite engine opens every transaction
    with ``BEGIN IMMEDIATE``, which would take the write lock from the hub at each poll.
    """
    query = select(MessageRow.status, func.count()).group_by(MessageRow.status)
    with observer.connect() as connection:
        return dict(connection.execute(query).tuples().all())


def delivery_times(observer: sqlalchemy.Engine) -> DeliveryTimes:
    """Received and delivered moments of every delivered message, both timezone-aware."""
    query = select(MessageRow.received_at, MessageRow.delivered_at).where(
        MessageRow.status == MessageStatus.DELIVERED
    )
    times = DeliveryTimes(received=[], delivered=[])
    with observer.connect() as connection:
        for received_at, delivered_at in connection.execute(query):
            if delivered_at is None:
                raise CoreRunFailed("a message is 'delivered' without a delivered_at")
            times.received.append(aware(received_at))
            times.delivered.append(aware(delivered_at))
    return times


def received_at_eod(eod_url: str) -> dict[str, int]:
    """How many times the EOD simulator received each envelope id."""
    response = requests.get(f"{eod_url}/_sim/received", timeout=30)
    response.raise_for_status()
    return {envelope_id: entry["count"] for envelope_id, entry in response.json().items()}


def delete_queues(settings: Settings, region: Region) -> None:
    """Remove the run's exchanges and queues; warn, do not fail, if the broker is gone."""
    try:
        connection = connect(settings.amqp_url)
        try:
            with translate_broker_errors(settings.amqp_url):
                settings.topology.delete(connection.channel())
        finally:
            close_quietly(connection)
    except BrokerUnavailable as exc:
        print(f"queues {settings.queue_prefix}.* left behind: {exc}", file=sys.stderr)


# --- checks and figures -------------------------------------------------------------


def check_exactly_once(message_ids: list[str], arrivals: dict[str, int], log_dir: Path) -> None:
    """Fail unless the EOD received every preloaded document once and nothing else."""
    expected = set(message_ids)
    missing = expected - set(arrivals)
    duplicated = {envelope_id for envelope_id, count in arrivals.items() if count != 1}
    unexpected = set(arrivals) - expected
    if missing or duplicated or unexpected:
        raise CoreRunFailed(
            f"not exactly once at the EOD: {len(missing)} missing, {len(duplicated)} "
            f"received more than once, {len(unexpected)} unexpected; see {log_dir}"
        )


def core_figures(
    plan: CoreRunPlan, started_at: datetime, times: DeliveryTimes, mean_body_bytes: int
) -> CoreRunResult:
    """Rates and percentiles from the store's timestamps."""
    first, last = min(times.delivered), max(times.delivered)
    elapsed_s = max((last - started_at).total_seconds(), 1e-9)
    delivering_s = max((last - first).total_seconds(), 1e-9)
    waits_ms = sorted(
        (delivered - received).total_seconds() * 1000
        for received, delivered in zip(times.received, times.delivered, strict=True)
    )
    return CoreRunResult(
        documents=plan.documents,
        offices=plan.offices,
        workers=plan.workers,
        mean_body_bytes=mean_body_bytes,
        elapsed_s=round(elapsed_s, 3),
        docs_per_s=round(plan.documents / elapsed_s, 1),
        first_delivery_s=round((first - started_at).total_seconds(), 3),
        docs_per_s_after_first_delivery=round((plan.documents - 1) / delivering_s, 1),
        backlog_wait_p50_ms=percentile(waits_ms, 50),
        backlog_wait_p99_ms=percentile(waits_ms, 99),
    )


def percentile(sorted_values: list[float], percent: int) -> float:
    """The ``percent``-th percentile (inclusive method), rounded to 0.1."""
    if len(sorted_values) < 2:
        return round(sorted_values[0], 1) if sorted_values else 0.0
    quantiles = statistics.quantiles(sorted_values, n=100, method="inclusive")
    return round(quantiles[percent - 1], 1)
