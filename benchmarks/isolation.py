"""A down, a slow and a flooded endpoint at once: do the other offices' documents keep flowing?

One run on the hub's real processes (``hub relay`` and W ``hub worker``, the settings'
defaults: 8 handler threads, 2 deliveries in flight per endpoint and process, 2 delivery
shards in each lane, a burst of more than 200 deliveries in 10 s moves to the bulk lane),
against EOD simulators that check the hub's seal, on a region of N real offices of the
sample region (``core_path.eod_region``). Three of them misbehave at the same time:

- **down**: its EOD endpoint points at a loopback port nobody listens on (connection
  refused); its circuit opens and stays open (the breaker's cool-down outlasts the run);
- **slow**: its endpoint goes to a second EOD simulator whose every answer takes
  ``--slow-s`` (a ``delay`` fault armed until cleared);
- **flooded**: a burst of ``--burst`` documents.

The other offices get ``--background`` documents, round-robin: ``--background-before``
of them stored before the burst, the rest filed by a thread at ``--rate`` documents/s
(an offered load, one ``Store.accept`` each, as an inbound door would) from the hub's
first delivery (its processes are up), while the burst is still queued. Those filed after the
burst are the interesting ones: on one FIFO queue they would wait behind all of it.

Before the launch (not timed) the store gets, in received_at order: the background
documents before the burst, the slow office's, the down office's, then the burst. The
latency of a stored-before document therefore holds the rest of the preload and the
hub's start-up; the after-burst row is the one to compare.

In the same invocation a reference run, "others alone", carries only the background
documents (same split, same rate, same offices) with no fault and no burst, on a fresh
store, so the others' p50/p99 can be read with and without the faults beside each other.

Per group it prints documents, delivered, received → delivered p50/p99/max (ms, from the
store's ``received_at`` and the deliveries' ``delivered_at``), the time from the launch to
the group's last delivery, attempts and dead deliveries, and received → routed p50/p99
(to the delivery row's ``created_at``: the wait in ``<prefix>.accepted``, before any
lane); for the down office how many of
its deliveries were attempted at all and its circuit at the end. Every delivered
document must have arrived exactly once at its EOD simulator (``/_sim/received``), or the
script exits 1, keeping the run's directory with its logs.

    .venv/bin/python benchmarks/isolation.py [--offices 50] [--burst 5000] [--background 2000]
        [--rate 25] [--slow-s 5] [--databases postgresql,sqlite] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy
from sqlalchemy import func, select

# First of the hub's imports: benchmarks/mappings.py must not stand in for the package.
import hub_packages  # noqa: F401  # isort: skip
from hub.envelope import Address, Envelope
from hub.region import Region
from hub.settings import Settings
from hub.signing.keystore import init_test_pki
from hub.states import DeliveryStatus
from hub.store.migrate import upgrade_database
from hub.store.models import AttemptRow, DeliveryRow, EndpointStateRow, MessageRow
from hub.store.repository import AcceptOutcome, Store, aware
from simulators.epuap.documents import generate_pismo_ogolne
from simulators.processes import ChildProcess, start_simulator, stop_all
from simulators.serving import free_port

# Run as a script, benchmarks/ is on sys.path, so its sibling modules import by name.
from core_path import (  # isort: skip
    DOCUMENT_SEED,
    DOCUMENT_SOURCE,
    PISMO_OGOLNE,
    CoreRunFailed,
    CoreRunPlan,
    core_settings,
    core_work_dir,
    delete_queues,
    eod_region,
    percentile,
    received_at_eod,
    sealed_eod_arguments,
    start_core_processes,
    write_region,
)
from demo_throughput import (  # isort: skip
    DATABASE_NAMES,
    DEFAULT_AMQP_URL,
    DEFAULT_POSTGRES_URL,
    fresh_core_store,
    positive_int,
)

EOD_SYSTEM = "eod"
POLL_INTERVAL_S = 0.2
TIMEOUT_S = 900.0
# Below what the hub carries on the 2-core machine with nothing else to do (about 45-50
# documents/s measured here under shared load), so the reference run measures the hub
# rather than a backlog growing without end; --rate 100 overloads it even without faults.
DEFAULT_RATE_PER_S = 25.0
# The down office's circuit must not let a probe through while the run lasts.
BREAKER_COOL_DOWN_S = 3 * 3600.0
GROUP_ORDER = ("others", "others_before", "others_after", "others_flooded_shard")
FAULT_GROUPS = ("flooded", "slow", "down")


# --- what one run carries -----------------------------------------------------------


@dataclass(frozen=True)
class IsolationPlan:
    """One run: its store, its sizes, and whether the three faults are on."""

    database_url: str
    amqp_url: str
    offices: int
    workers: int
    burst: int
    background: int
    background_before: int
    rate_per_s: float
    slow_documents: int
    slow_answer_s: float
    down_documents: int
    work_dir: Path
    faults: bool = True
    timeout_s: float = TIMEOUT_S

    @property
    def log_dir(self) -> Path:
        """Where the relay's and workers' logs go."""
        return self.work_dir / "logs"

    def as_core_plan(self) -> CoreRunPlan:
        """The same store, broker and processes, in ``core_path``'s terms."""
        return CoreRunPlan(
            database_url=self.database_url,
            amqp_url=self.amqp_url,
            documents=self.background,
            offices=self.offices,
            workers=self.workers,
            work_dir=self.work_dir,
            timeout_s=self.timeout_s,
        )


@dataclass(frozen=True)
class Roles:
    """Which offices misbehave, and the others."""

    flooded: str
    slow: str
    down: str
    others: tuple[str, ...]

    @classmethod
    def of(cls, region: Region) -> Roles:
        """The first three offices of the region misbehave; the rest are the others."""
        offices = list(region.offices)
        if len(offices) < 4:
            raise CoreRunFailed("the isolation run needs at least 4 offices")
        return cls(offices[0], offices[1], offices[2], tuple(offices[3:]))


@dataclass
class Batch:
    """Documents by group, in the order they are to be stored."""

    envelopes: list[Envelope] = field(default_factory=list)
    group_of: dict[str, str] = field(default_factory=dict)

    def add(self, group: str, envelopes: Sequence[Envelope]) -> None:
        """Append ``envelopes`` as members of ``group``."""
        self.envelopes.extend(envelopes)
        self.group_of.update((str(envelope.envelope_id), group) for envelope in envelopes)


@dataclass(frozen=True)
class DeliveredRow:
    """One message's fate, as the store recorded it."""

    message_id: str
    endpoint: str
    status: str
    attempts: int
    received_at: datetime
    routed_at: datetime
    delivered_at: datetime | None


# --- documents ----------------------------------------------------------------------


class Letters:
    """Pisma ogólne for named offices from one seeded generator, so every run is the same."""

    def __init__(self, region: Region) -> None:
        self._region = region
        self._rng = random.Random(DOCUMENT_SEED)

    def for_offices(self, offices: Sequence[str], count: int) -> list[Envelope]:
        """``count`` documents, round-robin over ``offices``."""
        return [self.one(offices[index % len(offices)]) for index in range(count)]

    def one(self, office_id: str) -> Envelope:
        """One document to ``office_id``."""
        office = self._region.offices[office_id]
        body = generate_pismo_ogolne(
            self._rng, office_name=office.name, office_teryt=office.id.replace("_", "")
        ).content
        return Envelope(
            document_type=PISMO_OGOLNE,
            source=DOCUMENT_SOURCE,
            destination=Address(office.id),
            body=body,
        )


def store_all(store: Store, envelopes: Sequence[Envelope]) -> None:
    """Store ``envelopes`` as accepted, in order (their received_at follows it)."""
    for envelope in envelopes:
        if store.accept(envelope) is not AcceptOutcome.ACCEPTED:
            raise CoreRunFailed(f"the store did not accept document {envelope.envelope_id}")


class Feeder(threading.Thread):
    """Files documents at a steady offered rate, one accept each, from when it starts.

    Each document has its due moment (start + i / rate); a feeder that falls behind
    files at once until it catches up, so the achieved rate shows what the store allowed.
    """

    def __init__(self, store: Store, envelopes: Sequence[Envelope], rate_per_s: float) -> None:
        super().__init__(name="isolation-feeder", daemon=True)
        self._store = store
        self._envelopes = envelopes
        self._rate = rate_per_s
        self.filed = 0
        self.elapsed_s = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        """File every document on schedule; keep the first error for the caller."""
        started = time.monotonic()
        try:
            for index, envelope in enumerate(self._envelopes):
                wait_s = started + index / self._rate - time.monotonic()
                if wait_s > 0:
                    time.sleep(wait_s)
                store_all(self._store, [envelope])
                self.filed += 1
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            self.error = exc
        self.elapsed_s = time.monotonic() - started

    @property
    def achieved_per_s(self) -> float:
        """Documents filed per second over the feeder's whole run."""
        return round(self.filed / self.elapsed_s, 1) if self.elapsed_s else 0.0


# --- one run ------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """What one run measured: per-group figures and the rest worth printing."""

    groups: dict[str, dict[str, Any]]
    roles: dict[str, str]
    offered_per_s: float
    achieved_per_s: float
    feeder_started_s: float
    down_circuit: str | None = None
    down_attempt_rows: int = 0
    eod_arrivals: dict[str, int] = field(default_factory=dict)


def run_isolation(plan: IsolationPlan) -> RunOutcome:
    """Preload, launch relay and workers, feed the background, wait, check, measure.

    Raises:
        CoreRunFailed: a hub process died, a document that could go was given up or
            rejected, the run timed out, or an EOD did not get every delivered document
            exactly once.
    """
    cool_down = {"HUB_BREAKER_COOL_DOWN_S": str(max(BREAKER_COOL_DOWN_S, plan.timeout_s * 2))}
    settings = core_settings(plan.as_core_plan(), prefix="bench-iso", extra_env=cool_down)
    upgrade_database(settings)
    store = Store.from_url(plan.database_url)
    feeding_store = Store.from_url(plan.database_url)
    observer = sqlalchemy.create_engine(plan.database_url)
    children: list[ChildProcess] = []
    region: Region | None = None
    try:
        init_test_pki(settings.keys, settings.trust, ["hub"])
        eod, eod_url = start_simulator("simulators.eod", *sealed_eod_arguments(settings))
        children.append(eod)
        region = eod_region(settings, eod_url, plan.offices)
        roles = Roles.of(region)
        slow_url = start_slow_eod(plan, settings, children)
        if plan.faults:
            region = with_faulty_endpoints(region, roles, slow_url)
        region_path = write_region(region, plan.work_dir)
        preloaded, fed = plan_documents(plan, region, roles)
        store_all(store, preloaded.envelopes)
        started_at = datetime.now(UTC)
        children += start_core_processes(plan.as_core_plan(), settings, region_path, cool_down)
        if preloaded.envelopes:
            wait_for_first_delivery(observer, plan, children)
        feeder_started_s = (datetime.now(UTC) - started_at).total_seconds()
        feeder = Feeder(feeding_store, fed.envelopes, plan.rate_per_s)
        feeder.start()
        group_of = {**preloaded.group_of, **fed.group_of}
        wait_until_flowed(observer, plan, children, feeder, group_of, roles)
        rows = delivery_rows(observer)
        down_circuit = circuit_of(observer, endpoint_of(roles.down))
        down_attempt_rows = attempts_recorded(observer, endpoint_of(roles.down))
        arrivals = received_at_eod(eod_url)
        slow_arrivals = received_at_eod(slow_url) if slow_url else {}
    finally:
        stop_all(children)
        if region is not None:
            delete_queues(settings, region)
        observer.dispose()
        feeding_store.close()
        store.close()
    check_exactly_once(rows, arrivals, slow_arrivals, group_of, plan.log_dir)
    return RunOutcome(
        groups=group_figures(rows, group_of, started_at, settings, roles),
        roles={"flooded": roles.flooded, "slow": roles.slow, "down": roles.down},
        offered_per_s=plan.rate_per_s,
        achieved_per_s=feeder.achieved_per_s,
        feeder_started_s=round(feeder_started_s, 2),
        down_circuit=down_circuit if plan.faults else None,
        down_attempt_rows=down_attempt_rows,
        eod_arrivals={"eod": len(arrivals), "slow_eod": len(slow_arrivals)},
    )


def start_slow_eod(
    plan: IsolationPlan, settings: Settings, children: list[ChildProcess]
) -> str | None:
    """A second sealed EOD whose every answer waits ``slow_answer_s``; None without faults."""
    if not plan.faults:
        return None
    slow, slow_url = start_simulator("simulators.eod", *sealed_eod_arguments(settings))
    children.append(slow)
    fault = {"kind": "delay", "times": None, "delay_s": plan.slow_answer_s}
    requests.post(f"{slow_url}/_sim/faults", json=fault, timeout=10).raise_for_status()
    return slow_url


def endpoint_of(office: str) -> str:
    """The EOD endpoint's name of ``office``."""
    return f"{EOD_SYSTEM}@{office}"


def with_faulty_endpoints(region: Region, roles: Roles, slow_url: str | None) -> Region:
    """The region with the slow office on the slow EOD and the down office on a dead port."""
    # Bound a moment ago and closed again: nothing listens there, so every connection
    # is refused at once, as with a system whose service is stopped.
    dead_url = f"http://127.0.0.1:{free_port()}"
    endpoints = dict(region.endpoints)
    for office, base_url in ((roles.slow, slow_url), (roles.down, dead_url)):
        endpoint = endpoints[endpoint_of(office)]
        url = f"{base_url}/offices/{office}/documents"
        endpoints[endpoint.name] = dataclasses.replace(endpoint, url=url)
    return dataclasses.replace(region, endpoints=endpoints)


def plan_documents(plan: IsolationPlan, region: Region, roles: Roles) -> tuple[Batch, Batch]:
    """What is stored before the launch (in received_at order), and what the feeder files."""
    letters = Letters(region)
    before = min(plan.background_before, plan.background)
    preloaded, fed = Batch(), Batch()
    preloaded.add("others_before", letters.for_offices(roles.others, before))
    if plan.faults:
        preloaded.add("slow", letters.for_offices([roles.slow], plan.slow_documents))
        preloaded.add("down", letters.for_offices([roles.down], plan.down_documents))
        preloaded.add("flooded", letters.for_offices([roles.flooded], plan.burst))
    fed.add("others_after", letters.for_offices(roles.others, plan.background - before))
    return preloaded, fed


def wait_for_first_delivery(
    observer: sqlalchemy.Engine, plan: IsolationPlan, children: Sequence[ChildProcess]
) -> None:
    """Poll until the hub delivered its first document: its processes are up.

    The feeder starts then, so the after-burst documents measure the running hub, not
    its start-up (the burst still fills the queues at that moment).
    """
    deadline = time.monotonic() + plan.timeout_s
    while time.monotonic() < deadline:
        if status_counts_outside(observer, "").get(DeliveryStatus.DELIVERED, 0):
            return
        exited = [child.name for child in children if not child.alive()]
        if exited:
            raise CoreRunFailed(f"process(es) exited early: {exited}; see {plan.log_dir}")
        time.sleep(POLL_INTERVAL_S / 4)
    raise CoreRunFailed(f"nothing delivered within {plan.timeout_s} s; see {plan.log_dir}")


def wait_until_flowed(
    observer: sqlalchemy.Engine,
    plan: IsolationPlan,
    children: Sequence[ChildProcess],
    feeder: Feeder,
    group_of: dict[str, str],
    roles: Roles,
) -> None:
    """Poll until everything but the down office's documents is delivered.

    Fails on a dead process, a feeder error, a rejected document or a given-up delivery
    of any office but the down one (the down one's are counted and printed instead).
    """
    deliverable = sum(1 for group in group_of.values() if group != "down")
    down = endpoint_of(roles.down)
    deadline = time.monotonic() + plan.timeout_s
    while time.monotonic() < deadline:
        if feeder.error is not None:
            raise CoreRunFailed(f"the feeder failed: {feeder.error!r}")
        counts = status_counts_outside(observer, down)
        if counts.get(DeliveryStatus.DELIVERED, 0) >= deliverable and not feeder.is_alive():
            return
        if counts.get(DeliveryStatus.DEAD, 0) or rejected_count(observer):
            raise CoreRunFailed(f"documents will never be delivered: {counts}; see {plan.log_dir}")
        exited = [child.name for child in children if not child.alive()]
        if exited:
            raise CoreRunFailed(f"process(es) exited early: {exited}; see {plan.log_dir}")
        time.sleep(POLL_INTERVAL_S)
    raise CoreRunFailed(
        f"not all delivered within {plan.timeout_s} s: {status_counts_outside(observer, down)}; "
        f"see {plan.log_dir}"
    )


def status_counts_outside(observer: sqlalchemy.Engine, endpoint: str) -> dict[str, int]:
    """How many deliveries to every endpoint but ``endpoint`` stand in each status.

    Read on a plain engine of its own, as ``core_path`` does: the store's SQLite engine
    would take the write lock from the hub at each poll.
    """
    query = (
        select(DeliveryRow.status, func.count())
        .where(DeliveryRow.endpoint != endpoint)
        .group_by(DeliveryRow.status)
    )
    with observer.connect() as connection:
        return {str(row[0]): int(row[1]) for row in connection.execute(query)}


def rejected_count(observer: sqlalchemy.Engine) -> int:
    """Messages the hub rejected (none should be: every document is well formed)."""
    query = select(func.count()).select_from(MessageRow).where(MessageRow.status == "rejected")
    with observer.connect() as connection:
        return int(connection.scalar(query) or 0)


def delivery_rows(observer: sqlalchemy.Engine) -> list[DeliveredRow]:
    """Every message's delivery: endpoint, status, attempts, received and delivered."""
    query = select(
        MessageRow.id,
        DeliveryRow.endpoint,
        DeliveryRow.status,
        DeliveryRow.attempts,
        MessageRow.received_at,
        DeliveryRow.created_at,
        DeliveryRow.delivered_at,
    ).join(DeliveryRow, DeliveryRow.message_id == MessageRow.id)
    with observer.connect() as connection:
        found = connection.execute(query).all()
    return [
        DeliveredRow(
            message_id=str(message_id),
            endpoint=endpoint,
            status=status,
            attempts=attempts or 0,
            received_at=aware(received_at),
            routed_at=aware(routed_at),
            delivered_at=aware(delivered_at) if delivered_at is not None else None,
        )
        for message_id, endpoint, status, attempts, received_at, routed_at, delivered_at in found
    ]


def circuit_of(observer: sqlalchemy.Engine, endpoint: str) -> str | None:
    """The circuit state the store holds for ``endpoint`` (None: never touched)."""
    query = select(EndpointStateRow.state).where(EndpointStateRow.endpoint == endpoint)
    with observer.connect() as connection:
        state = connection.scalar(query)
        return None if state is None else str(state)


def attempts_recorded(observer: sqlalchemy.Engine, endpoint: str) -> int:
    """Attempt rows of every delivery to ``endpoint`` (the counter's cross-check)."""
    query = (
        select(func.count())
        .select_from(AttemptRow)
        .join(DeliveryRow, DeliveryRow.id == AttemptRow.delivery_id)
        .where(DeliveryRow.endpoint == endpoint)
    )
    with observer.connect() as connection:
        return int(connection.scalar(query) or 0)


# --- checks and figures -------------------------------------------------------------


def check_exactly_once(
    rows: Sequence[DeliveredRow],
    arrivals: dict[str, int],
    slow_arrivals: dict[str, int],
    group_of: dict[str, str],
    log_dir: Path,
) -> None:
    """Fail unless each delivered document reached its EOD once, and nothing else came."""
    delivered = {
        row.message_id: group_of.get(row.message_id, "?")
        for row in rows
        if row.delivered_at is not None
    }
    expected_slow = {message_id for message_id, group in delivered.items() if group == "slow"}
    expected_main = set(delivered) - expected_slow
    problems = [
        *arrival_problems("eod", expected_main, arrivals),
        *arrival_problems("slow eod", expected_slow, slow_arrivals),
    ]
    if problems:
        raise CoreRunFailed(f"not exactly once: {'; '.join(problems)}; see {log_dir}")


def arrival_problems(name: str, expected: set[str], arrivals: dict[str, int]) -> list[str]:
    """What is wrong with one EOD's arrivals against the documents delivered to it."""
    missing = expected - set(arrivals)
    repeated = {envelope_id for envelope_id, count in arrivals.items() if count != 1}
    unexpected = set(arrivals) - expected
    if not (missing or repeated or unexpected):
        return []
    return [
        f"{name}: {len(missing)} missing, {len(repeated)} more than once, "
        f"{len(unexpected)} unexpected"
    ]


def group_figures(
    rows: Sequence[DeliveredRow],
    group_of: dict[str, str],
    started_at: datetime,
    settings: Settings,
    roles: Roles,
) -> dict[str, dict[str, Any]]:
    """Per group: documents, delivered, latency percentiles, last delivery, attempts, dead."""
    members: dict[str, list[DeliveredRow]] = {}
    flooded_shard = settings.topology.shard_of(endpoint_of(roles.flooded))
    for row in rows:
        group = group_of.get(row.message_id)
        if group is None:
            continue
        members.setdefault(group, []).append(row)
        if group.startswith("others_"):
            members.setdefault("others", []).append(row)
        if group == "others_after" and settings.topology.shard_of(row.endpoint) == flooded_shard:
            members.setdefault("others_flooded_shard", []).append(row)
    return {
        group: figures_of(members[group], started_at)
        for group in (*GROUP_ORDER, *FAULT_GROUPS)
        if group in members
    }


def figures_of(rows: Sequence[DeliveredRow], started_at: datetime) -> dict[str, Any]:
    """One group's figures (latency over its delivered documents only)."""
    done = [row for row in rows if row.delivered_at is not None]
    waits_ms = sorted(
        (row.delivered_at - row.received_at).total_seconds() * 1000
        for row in done
        if row.delivered_at is not None
    )
    last = max((row.delivered_at for row in done if row.delivered_at is not None), default=None)
    routing_ms = sorted((row.routed_at - row.received_at).total_seconds() * 1000 for row in rows)
    return {
        "documents": len(rows),
        "delivered": len(done),
        "p50_ms": percentile(waits_ms, 50),
        "p99_ms": percentile(waits_ms, 99),
        "max_ms": round(waits_ms[-1], 1) if waits_ms else 0.0,
        "routed_p50_ms": percentile(routing_ms, 50),
        "routed_p99_ms": percentile(routing_ms, 99),
        "last_delivery_s": round((last - started_at).total_seconds(), 2) if last else None,
        "attempts": sum(row.attempts for row in rows),
        "attempted": sum(1 for row in rows if row.attempts),
        "dead": sum(1 for row in rows if row.status == DeliveryStatus.DEAD),
        "statuses": dict(sorted(count_statuses(rows).items())),
    }


def count_statuses(rows: Sequence[DeliveredRow]) -> dict[str, int]:
    """How many of ``rows`` stand in each delivery status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


# --- command line and output --------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: region and run sizes, the faults, databases and output format."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offices", type=positive_int, default=50)
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--burst", type=positive_int, default=5000, help="to the flooded office")
    parser.add_argument(
        "--background", type=positive_int, default=2000, help="to the other offices"
    )
    parser.add_argument(
        "--background-before",
        type=int,
        default=None,
        help="of the background, stored before the burst (default a tenth)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE_PER_S,
        help="background documents/s filed after the burst",
    )
    parser.add_argument("--slow-documents", type=positive_int, default=20)
    parser.add_argument("--slow-s", type=float, default=5.0, help="the slow EOD's answer time")
    parser.add_argument("--down-documents", type=positive_int, default=20)
    parser.add_argument(
        "--databases",
        type=database_list,
        default=["postgresql"],
        help="comma-separated, from: sqlite,postgresql",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--amqp-url", default=os.environ.get("HUB_AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument("--timeout-s", type=float, default=TIMEOUT_S)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    arguments = parser.parse_args(argv)
    if arguments.background_before is None:
        arguments.background_before = arguments.background // 10
    if arguments.rate <= 0:
        parser.error("--rate must be positive")
    return arguments


def database_list(text: str) -> list[str]:
    """``"sqlite,postgresql"`` as a list, rejecting unknown names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or set(names) - set(DATABASE_NAMES):
        raise argparse.ArgumentTypeError(f"choose from {','.join(DATABASE_NAMES)}, got {text!r}")
    return names


def plan_for(
    arguments: argparse.Namespace, database_url: str, work_dir: Path, *, faults: bool
) -> IsolationPlan:
    """The plan of one run from the command line."""
    return IsolationPlan(
        database_url=database_url,
        amqp_url=arguments.amqp_url,
        offices=arguments.offices,
        workers=arguments.workers,
        burst=arguments.burst,
        background=arguments.background,
        background_before=arguments.background_before,
        rate_per_s=arguments.rate,
        slow_documents=arguments.slow_documents,
        slow_answer_s=arguments.slow_s,
        down_documents=arguments.down_documents,
        work_dir=work_dir,
        faults=faults,
        timeout_s=arguments.timeout_s,
    )


@contextlib.contextmanager
def one_run(arguments: argparse.Namespace, database: str) -> Iterator[tuple[str, Path]]:
    """A fresh store and work directory for one run (the directory kept if it fails)."""
    with core_work_dir() as work_dir, fresh_core_store(arguments, database, work_dir) as url:
        yield url, work_dir


def measure(arguments: argparse.Namespace, database: str) -> dict[str, Any]:
    """The faulty run, then the reference run of the others alone, on ``database``."""
    figures: dict[str, Any] = {}
    for name, faults in (("faults", True), ("alone", False)):
        try:
            with one_run(arguments, database) as (database_url, work_dir):
                outcome = run_isolation(plan_for(arguments, database_url, work_dir, faults=faults))
        except CoreRunFailed as exc:
            print(f"isolation run ({name}) on {database} failed: {exc}", file=sys.stderr)
            raise SystemExit(1) from exc
        figures[name] = dataclasses.asdict(outcome)
    return figures


ROW_LABELS = {
    "others": "others",
    "others_before": "  stored before the burst",
    "others_after": "  filed after the burst",
    "others_flooded_shard": "  after, on flooded's shard",
    "flooded": "flooded",
    "slow": "slow",
    "down": "down",
}


def print_database(database: str, arguments: argparse.Namespace, figures: dict[str, Any]) -> None:
    """The two runs on one database as one table, then the down office's line."""
    faulty, alone = figures["faults"], figures["alone"]
    roles = faulty["roles"]
    print(
        f"\nisolation on {database}: {arguments.offices} offices, {arguments.workers} workers; "
        f"flooded {roles['flooded']} ({arguments.burst}), slow {roles['slow']} "
        f"({arguments.slow_documents}, {arguments.slow_s:g} s an answer), down {roles['down']} "
        f"({arguments.down_documents}, connection refused); background "
        f"{arguments.background} ({arguments.background_before} before the burst, the rest "
        f"offered at {arguments.rate:g}/s from the first delivery, at "
        f"{faulty['feeder_started_s']:g} s: {faulty['achieved_per_s']:g}/s filed; alone from "
        f"{alone['feeder_started_s']:g} s: {alone['achieved_per_s']:g}/s filed)"
    )
    header = (
        f"{'group':<30}{'docs':>6}{'deliv.':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'last s':>8}{'attempts':>9}{'dead':>5}{'routed p50':>11}{'p99':>8}"
    )
    print(header)
    for title, run in (("with the faults", faulty), ("others alone (reference)", alone)):
        print(f"-- {title}")
        for group, label in ROW_LABELS.items():
            if group in run["groups"]:
                print(table_row(label, run["groups"][group]))
    down = faulty["groups"].get("down")
    if down is not None:
        print(
            f"down: circuit {faulty['down_circuit']}; {down['attempts']} attempts "
            f"({faulty['down_attempt_rows']} attempt rows) over "
            f"{down['attempted']} of its {down['documents']} deliveries, {down['dead']} given up "
            f"(dead); statuses {down['statuses']}"
        )
    print(
        f"exactly once at the EODs: yes ({faulty['eod_arrivals']['eod']} + "
        f"{faulty['eod_arrivals']['slow_eod']} documents with the faults, "
        f"{alone['eod_arrivals']['eod']} alone)"
    )


def table_row(label: str, group: dict[str, Any]) -> str:
    """One group as a table row."""
    last = "-" if group["last_delivery_s"] is None else f"{group['last_delivery_s']:.1f}"
    return (
        f"{label:<30}{group['documents']:>6}{group['delivered']:>7}{group['p50_ms']:>9.0f}"
        f"{group['p99_ms']:>9.0f}{group['max_ms']:>9.0f}{last:>8}{group['attempts']:>9}"
        f"{group['dead']:>5}{group['routed_p50_ms']:>11.0f}{group['routed_p99_ms']:>8.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    """Run both runs per database; print the tables (and, with --json, one JSON line)."""
    arguments = parse_arguments(argv)
    report: dict[str, Any] = {"parameters": parameters_of(arguments), "runs": {}}
    for database in arguments.databases:
        report["runs"][database] = measure(arguments, database)
        print_database(database, arguments, report["runs"][database])
    if arguments.json:
        print(json.dumps(report))


def parameters_of(arguments: argparse.Namespace) -> dict[str, Any]:
    """The run's sizes and the hub's settings that matter here, for the JSON line."""
    defaults = Settings()
    return {
        "offices": arguments.offices,
        "workers": arguments.workers,
        "burst": arguments.burst,
        "background": arguments.background,
        "background_before": arguments.background_before,
        "rate_per_s": arguments.rate,
        "slow_documents": arguments.slow_documents,
        "slow_answer_s": arguments.slow_s,
        "down_documents": arguments.down_documents,
        "databases": arguments.databases,
        "worker_threads": defaults.worker_threads,
        "endpoint_concurrency": defaults.endpoint_concurrency,
        "delivery_shards": defaults.delivery_shards,
        "burst_deliveries": defaults.burst_deliveries,
        "burst_window_s": defaults.burst_window_s,
        "breaker_failure_threshold": defaults.breaker_failure_threshold,
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    main()
