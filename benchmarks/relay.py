"""The outbox relay alone: N preloaded outbox rows → RabbitMQ, its rate and its CPU.

Per database (PostgreSQL by default, SQLite on request) it migrates a fresh store,
preloads N accepted pisma ogólne as ``core_path.py`` does (not timed), gives each
document ``--audit-rows`` audit rows in all (a document's whole journey writes about
four: accepted, routed, delivering, delivered), then starts one ``hub relay`` process
and waits until every outbox row is sent and every audit row chained. Reported:

- ``rows/s``: rows after the relay's first batch ÷ time from its first to its last
  ``sent_at`` (start-up left out); ``elapsed s`` from launch, start-up included;
- ``cpu s``: the relay process's user + system CPU from before its first batch to the
  end (read from ``/proc``), and ``cpu ms/row``;
- ``idle cpu %``: its CPU share over ``--idle-seconds`` after the outbox ran dry;
- ``queued``: messages on ``<prefix>.accepted`` at the end; anything but N fails the run.

In the same run, the bare stage under it: N persistent publishes of the same mean body
size to a temporary quorum queue on a pika ``SelectConnection`` with asynchronous
confirms (everything published, then every confirm awaited), and a blocking confirm per
message for ``--blocking-messages`` of them; ``ratio`` is the relay's rows/s ÷ the
asynchronous rate. ``--profile DIR`` records the relay with py-spy (if installed) and
prints its top frames. Figures are printed, never asserted; the run fails only if the
relay dies, stalls, or queues other than N messages.

    .venv/bin/python benchmarks/relay.py --rows 3000 [--databases postgresql,sqlite] [--json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.channel
import pika.frame
import sqlalchemy
from pika.adapters.select_connection import SelectConnection
from sqlalchemy import func, select

from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.settings import Settings
from hub.store.migrate import upgrade_database
from hub.store.repository import Store, audit_event, utcnow
from hub.store.tables import AUDIT, OUTBOX
from simulators.processes import ChildProcess, start_hub_process

# Run as a script, benchmarks/ is on sys.path, so its sibling modules import by name.
from core_path import eod_region, preload_documents, sqlite_url_in, write_region  # isort: skip
from demo_throughput import fresh_postgres_database  # isort: skip

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
POLL_INTERVAL_S = 0.05
TIMEOUT_S = 600.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
UNREACHABLE_EOD = "http://127.0.0.1:9"  # the relay never delivers; only the region's names


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="outbox rows to relay")
    parser.add_argument("--databases", default="postgresql", help="postgresql,sqlite")
    parser.add_argument("--offices", type=int, default=2, help="offices of the region")
    parser.add_argument("--audit-rows", type=int, default=4, help="audit rows per document")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--blocking-messages", type=int, default=500)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output folder")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--amqp-url", default=os.environ.get("HUB_AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    return parser.parse_args(argv)


# --- the relay ----------------------------------------------------------------------


@contextlib.contextmanager
def fresh_store(arguments: argparse.Namespace, database: str, work_dir: Path) -> Iterator[str]:
    """A store URL no earlier run wrote to."""
    if database == "postgresql":
        with fresh_postgres_database(arguments.postgres_url) as database_url:
            yield database_url
    else:
        yield sqlite_url_in(work_dir)


def measure_relay(arguments: argparse.Namespace, database: str) -> dict[str, Any]:
    """Preload, run ``hub relay`` until the outbox is sent and the chain linked, measure."""
    work_dir = Path(tempfile.mkdtemp(prefix="hub-bench-relay-"))
    try:
        with fresh_store(arguments, database, work_dir) as database_url:
            figures = relay_run(arguments, database, database_url, work_dir)
    except BaseException:
        print(f"relay run failed; its logs are in {work_dir}", file=sys.stderr)
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    return figures


def relay_run(
    arguments: argparse.Namespace, database: str, database_url: str, work_dir: Path
) -> dict[str, Any]:
    """One relay process over one preloaded store."""
    settings = Settings.load(
        environ={
            "HUB_DATABASE_URL": database_url,
            "HUB_AMQP_URL": arguments.amqp_url,
            "HUB_QUEUE_PREFIX": f"bench-relay-{secrets.token_hex(4)}",
            "HUB_VAR_DIR": str(work_dir),
        }
    )
    upgrade_database(settings)
    store = Store.from_url(database_url)
    observer = sqlalchemy.create_engine(database_url)
    region = eod_region(settings, UNREACHABLE_EOD, arguments.offices)
    region_path = write_region(region, work_dir)
    relay: ChildProcess | None = None
    profiler: tuple[subprocess.Popen[bytes], Path] | None = None
    try:
        _, mean_body_bytes = preload_documents(store, region, arguments.rows)
        add_audit_rows(store, arguments.audit_rows)
        env = {
            "HUB_DATABASE_URL": database_url,
            "HUB_AMQP_URL": arguments.amqp_url,
            "HUB_QUEUE_PREFIX": settings.queue_prefix,
            "HUB_REGION_PATH": str(region_path),
            "HUB_VAR_DIR": str(work_dir),
            "HUB_LOG_LEVEL": "warning",
            "HUB_LOG_FORMAT": "json",
        }
        launched = time.monotonic()
        relay = start_hub_process("relay", ["relay"], env, work_dir / "logs")
        profiler = start_profiler(arguments.profile, database, relay)
        cpu_before_s = wait_for_first_batch(observer, relay, arguments.rows)
        wait_until_relayed(observer, relay)
        elapsed_s = time.monotonic() - launched
        cpu_done_s = process_cpu_s(relay)
        stop_profiler(profiler)
        time.sleep(arguments.idle_seconds)
        idle_cpu_s = process_cpu_s(relay) - cpu_done_s
        queued = queue_depth(settings)
        figures = {
            "database": database,
            "rows": arguments.rows,
            "audit_rows": audit_row_count(observer),
            "mean_body_bytes": mean_body_bytes,
            "elapsed_s": round(elapsed_s, 2),
            "rows_per_s": steady_rate(observer),
            "cpu_s": round(cpu_done_s - cpu_before_s, 2),
            "cpu_ms_per_row": round((cpu_done_s - cpu_before_s) * 1000 / arguments.rows, 3),
            "idle_cpu_percent": round(100 * idle_cpu_s / arguments.idle_seconds, 1),
            "queued": queued,
        }
    finally:
        if relay is not None:
            relay.stop()
        delete_queues(settings)
        observer.dispose()
        store.close()
    if queued != arguments.rows:
        raise RuntimeError(f"{queued} messages queued for {arguments.rows} outbox rows")
    if profiler is not None:
        figures["profile"] = summarise_profile(profiler[1])
    return figures


def add_audit_rows(store: Store, rows_per_document: int) -> None:
    """Top every document up to ``rows_per_document`` audit rows (accepting wrote one)."""
    with store.reading() as connection:
        message_ids = list(connection.scalars(select(AUDIT.c.message_id)))
    events = ["routed", "delivering", "delivered"]
    for start in range(0, len(message_ids), 500):
        with store.transaction() as connection:
            for message_id in message_ids[start : start + 500]:
                for number in range(rows_per_document - 1):
                    event = events[number % len(events)]
                    audit_event(connection, message_id, event, utcnow(), endpoint="eod@bench")


def wait_for_first_batch(observer: sqlalchemy.Engine, relay: ChildProcess, rows: int) -> float:
    """Wait until the relay marked its first rows sent; return its CPU just before."""
    cpu_s = process_cpu_s(relay)
    deadline = time.monotonic() + TIMEOUT_S
    while unsent_rows(observer) == rows:
        check_alive(relay)
        if time.monotonic() > deadline:
            raise RuntimeError("the relay sent nothing")
        cpu_s = process_cpu_s(relay)
        time.sleep(POLL_INTERVAL_S / 5)
    return cpu_s


def wait_until_relayed(observer: sqlalchemy.Engine, relay: ChildProcess) -> None:
    """Wait until nothing is unsent and nothing unchained."""
    deadline = time.monotonic() + TIMEOUT_S
    while unsent_rows(observer) or unchained_rows(observer):
        check_alive(relay)
        if time.monotonic() > deadline:
            raise RuntimeError("the relay did not finish in time")
        time.sleep(POLL_INTERVAL_S)


def check_alive(relay: ChildProcess) -> None:
    """Fail at once if the relay died."""
    if not relay.alive():
        raise RuntimeError(f"the relay exited; see {relay.log_path}")


def unsent_rows(observer: sqlalchemy.Engine) -> int:
    """Outbox rows without ``sent_at``."""
    query = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at.is_(None))
    with observer.connect() as connection:
        return int(connection.scalar(query) or 0)


def unchained_rows(observer: sqlalchemy.Engine) -> int:
    """Audit rows without a chain position."""
    query = select(func.count()).select_from(AUDIT).where(AUDIT.c.chain_seq.is_(None))
    with observer.connect() as connection:
        return int(connection.scalar(query) or 0)


def audit_row_count(observer: sqlalchemy.Engine) -> int:
    """Every audit row (all chained by now)."""
    with observer.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(AUDIT)) or 0)


def steady_rate(observer: sqlalchemy.Engine) -> float | None:
    """Rows after the first batch ÷ time from the first ``sent_at`` to the last.

    None when every row went in the first batch (a tiny run): there is no span to time.
    """
    with observer.connect() as connection:
        first, last = connection.execute(
            select(func.min(OUTBOX.c.sent_at), func.max(OUTBOX.c.sent_at))
        ).one()
        first_batch = connection.scalar(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at == first)
        )
        total = connection.scalar(select(func.count()).select_from(OUTBOX))
    span_s = (last - first).total_seconds()
    return round((int(total or 0) - int(first_batch or 0)) / span_s, 1) if span_s > 0 else None


def process_cpu_s(child: ChildProcess) -> float:
    """User + system CPU seconds of a live child, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{child.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3 of stat(5); utime and stime are 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def queue_depth(settings: Settings) -> int:
    """Messages waiting on the run's accepted queue (a passive declare)."""
    connection = connect(settings.amqp_url)
    try:
        with translate_broker_errors(settings.amqp_url):
            declared = connection.channel().queue_declare(
                settings.topology.accepted_queue, passive=True
            )
            return int(declared.method.message_count)
    finally:
        close_quietly(connection)


def delete_queues(settings: Settings) -> None:
    """Remove the run's exchanges and queues."""
    connection = connect(settings.amqp_url)
    try:
        with translate_broker_errors(settings.amqp_url):
            settings.topology.delete(connection.channel())
    finally:
        close_quietly(connection)


# --- profiling ----------------------------------------------------------------------


def start_profiler(
    folder: Path | None, database: str, relay: ChildProcess
) -> tuple[subprocess.Popen[bytes], Path] | None:
    """Record the relay with py-spy (collapsed stacks), if asked and installed."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if folder is None or not Path(py_spy).exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"relay-{database}.txt"
    command = [py_spy, "record", "--pid", str(relay.process.pid), "--format", "raw"]
    command += ["--rate", "200", "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # py-spy attaches before the relay's first batch is done
    return process, output


def stop_profiler(profiler: tuple[subprocess.Popen[bytes], Path] | None) -> None:
    """Stop py-spy (SIGINT makes it write its output)."""
    if profiler is None:
        return
    profiler[0].send_signal(2)
    profiler[0].wait(30)


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Shares of the relay's working samples: per leaf function, and per hub function.

    Only stacks under the relay's loop (``_run_connected``) count, so start-up (imports,
    declaring the topology) stays out; py-spy leaves idle samples out by itself.
    """
    if not path.exists():
        return {}
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = working = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        frames = [frame_name(frame) for frame in stack.split(";")]
        if not any(name.startswith("OutboxRelay._run_connected ") for name in frames):
            continue
        working += count
        own[frames[-1]] += count
        for name in set(frames):
            if "(hub/" in name:
                inclusive[name] += count

    def share(counter: collections.Counter[str]) -> dict[str, float]:
        return {
            name: round(100 * count / max(working, 1), 1)
            for name, count in counter.most_common(top)
        }

    return {
        "samples": total,
        "working_samples": working,
        "self_percent": share(own),
        "hub_inclusive_percent": share(inclusive),
    }


def frame_name(frame: str) -> str:
    """``function (package/module.py)`` of a collapsed py-spy frame, without its line."""
    function, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{function} ({short})"


# --- the bare stage -----------------------------------------------------------------


class AsyncConfirmPublisher:
    """N persistent publishes on a SelectConnection, every confirm awaited asynchronously."""

    def __init__(self, amqp_url: str, queue: str, count: int, body: bytes) -> None:
        self._queue, self._count, self._body = queue, count, body
        self._confirmed = 0
        self._started = self._finished = 0.0
        self._channel: pika.channel.Channel | None = None
        self._connection = SelectConnection(
            pika.URLParameters(amqp_url), on_open_callback=self._on_open
        )

    def run(self) -> float:
        """Publish everything, wait for every confirm; return publishes/s."""
        self._connection.ioloop.start()
        return round(self._count / (self._finished - self._started), 1)

    def _on_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        channel.queue_declare(
            self._queue,
            durable=True,
            arguments={"x-queue-type": "quorum"},
            callback=lambda _frame: channel.confirm_delivery(self._on_confirm, self._publish),
        )

    def _publish(self, _frame: pika.frame.Method) -> None:
        assert self._channel is not None
        properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        self._started = time.perf_counter()
        for _ in range(self._count):
            self._channel.basic_publish("", self._queue, self._body, properties, mandatory=True)

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        assert self._channel is not None
        confirmed_up_to = frame.method.delivery_tag
        self._confirmed = confirmed_up_to if frame.method.multiple else self._confirmed + 1
        if self._confirmed >= self._count:
            self._finished = time.perf_counter()
            self._channel.queue_delete(self._queue, callback=lambda _f: self._connection.close())
            self._connection.ioloop.add_callback_threadsafe(self._stop_when_closed)

    def _stop_when_closed(self) -> None:
        if self._connection.is_closed:
            self._connection.ioloop.stop()
        else:
            self._connection.ioloop.call_later(0.01, self._stop_when_closed)


def blocking_confirm_rate(amqp_url: str, count: int, body: bytes) -> float:
    """Persistent publishes/s with a blocking confirm per message (pika's BlockingChannel)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = f"hub-bench-relay-blocking-{secrets.token_hex(4)}"
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    try:
        channel.confirm_delivery()
        properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        started = time.perf_counter()
        for _ in range(count):
            channel.basic_publish("", queue, body, properties, mandatory=True)
        return round(count / (time.perf_counter() - started), 1)
    finally:
        channel.queue_delete(queue)
        connection.close()


def measure_bare_stage(arguments: argparse.Namespace, body_bytes: int) -> dict[str, float]:
    """The publish stage under the relay, with the relay's body size."""
    body = secrets.token_bytes(body_bytes)
    queue = f"hub-bench-relay-async-{secrets.token_hex(4)}"
    return {
        "async_confirm_publishes_per_s": AsyncConfirmPublisher(
            arguments.amqp_url, queue, arguments.rows, body
        ).run(),
        "blocking_confirm_publishes_per_s": blocking_confirm_rate(
            arguments.amqp_url, arguments.blocking_messages, body
        ),
    }


# --- the report ---------------------------------------------------------------------


def print_report(runs: list[dict[str, Any]], stage: dict[str, float]) -> None:
    """The figures as a table, then each profile's top frames."""
    print(
        f"{'database':<11}{'rows':>6}{'audit':>7}{'rows/s':>9}{'elapsed s':>11}{'cpu s':>8}"
        f"{'cpu ms/row':>12}{'idle cpu %':>12}{'queued':>8}{'ratio':>7}"
    )
    for run in runs:
        rate = run["rows_per_s"]
        ratio = f"{rate / stage['async_confirm_publishes_per_s']:.2f}" if rate else "n/a"
        print(
            f"{run['database']:<11}{run['rows']:>6}{run['audit_rows']:>7}"
            f"{rate or 'n/a':>9}{run['elapsed_s']:>11}{run['cpu_s']:>8}"
            f"{run['cpu_ms_per_row']:>12}{run['idle_cpu_percent']:>12}{run['queued']:>8}"
            f"{ratio:>7}"
        )
    print(
        f"bare publish, async confirms: {stage['async_confirm_publishes_per_s']} msg/s; "
        f"a blocking confirm each: {stage['blocking_confirm_publishes_per_s']} msg/s"
    )
    for run in runs:
        profile = run.get("profile")
        if profile:
            print(
                f"\npy-spy, relay on {run['database']}: {profile['working_samples']} of "
                f"{profile['samples']} samples in the relay loop; % of those"
            )
            for kind in ("self_percent", "hub_inclusive_percent"):
                print(f"  {kind}:")
                for name, percent in profile[kind].items():
                    print(f"    {percent:5.1f}  {name}")


def main(argv: list[str] | None = None) -> None:
    """Run the relay per database, then the bare stage, and print both."""
    arguments = parse_arguments(argv)
    runs = [measure_relay(arguments, name) for name in arguments.databases.split(",")]
    body_bytes = runs[0]["mean_body_bytes"] if runs else 7000
    stage = measure_bare_stage(arguments, body_bytes)
    print_report(runs, stage)
    if arguments.json:
        print(json.dumps({"relays": runs, "stage": stage}))


if __name__ == "__main__":
    main()
