"""Throughput of the whole hub (``hub demo``) and of its core, next to the bare stages.

Per database (SQLite, PostgreSQL) it runs ``hub demo --json`` (the simulated ePUAP
inbox bounds that path) and the hub core alone (``core_path.py``: documents preloaded
into a fresh store, then relay → RabbitMQ → workers → EOD). In the same run it measures
the stages every document pays for: a persistent RabbitMQ publish with a blocking
publisher confirm, a manually acknowledged consume, a one-row database commit and an
HTTP POST to the EOD simulator. Absolute figures depend on the machine; the ratios
between the hub and its stages are what to compare between runs.

    .venv/bin/python benchmarks/demo_throughput.py --documents 1000 --offices 10 --workers 2

Benchmarks print figures; they never assert timings. The script fails (exit 1) only
if the demo or the core run fails or does not deliver every document exactly once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pika
import psycopg
import requests
from psycopg import sql
from sqlalchemy.engine import make_url

from simulators.processes import start_simulator

# Run as a script, benchmarks/ is on sys.path, so its sibling module imports by name.
from core_path import (  # isort: skip
    CoreRunFailed,
    CoreRunPlan,
    core_work_dir,
    measure_hub_core,
    sqlite_url_in,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PAYLOAD = secrets.token_bytes(5 * 1024)
CONSUME_PREFETCH = 50  # the hub's workers' default prefetch (Settings.prefetch)
COMMITS_PER_DOCUMENT = 5  # context for the reader, not an assertion
CONFIRMED_PUBLISHES_PER_DOCUMENT = 2
# The core's start-up is not part of the demo's timing, so its ratios leave it out too.
CORE_RATE_FOR_RATIOS = "docs_per_s_after_first_delivery"
DATABASE_NAMES = ("sqlite", "postgresql")
REPORTED_PARAMETERS = (
    "documents",
    "offices",
    "workers",
    "core_documents",
    "databases",
    "broker_messages",
    "sqlite_rows",
    "postgres_rows",
    "http_requests",
)


@dataclass
class BenchmarkReport:
    """Everything one run measured, ready for the table or for JSON."""

    parameters: dict[str, Any]
    demos: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    log_problems: dict[str, dict[str, int]] = field(default_factory=dict)
    cores: dict[str, dict[str, Any]] = field(default_factory=dict)
    core_log_problems: dict[str, dict[str, int]] = field(default_factory=dict)


# --- command line -------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: run sizes, what to run, databases, stage sizes and output format."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=positive_int, default=1000, help="for the demo")
    parser.add_argument("--offices", type=positive_int, default=10)
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument(
        "--core-documents", type=positive_int, default=3000, help="preloaded for the core run"
    )
    parser.add_argument("--skip-demo", action="store_true", help="do not run hub demo")
    parser.add_argument("--skip-core", action="store_true", help="do not run the hub core")
    parser.add_argument(
        "--databases",
        type=parse_database_list,
        default=list(DATABASE_NAMES),
        help="comma-separated, from: sqlite,postgresql",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--amqp-url", default=os.environ.get("HUB_AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument("--broker-messages", type=int, default=2000)
    parser.add_argument("--sqlite-rows", type=int, default=2000)
    parser.add_argument("--postgres-rows", type=int, default=1000)
    parser.add_argument("--http-requests", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return number


def parse_database_list(text: str) -> list[str]:
    """``"sqlite,postgresql"`` as a list, rejecting unknown names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(DATABASE_NAMES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(DATABASE_NAMES)}, got {text!r}")
    return names


# --- timing helpers -----------------------------------------------------------------


def rate_per_second(count: int, action: Callable[[int], None]) -> float:
    """Call ``action(i)`` for i in range(count); return calls per second."""
    started = time.perf_counter()
    for index in range(count):
        action(index)
    return round(count / (time.perf_counter() - started), 1)


# --- PostgreSQL bench database ------------------------------------------------------


def libpq_url(sqlalchemy_url: str, database: str) -> str:
    """A psycopg connection URL for ``database`` on the server of ``sqlalchemy_url``."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """Create ``hub_bench_<random>``; yield its SQLAlchemy URL; drop it afterwards."""
    name = f"hub_bench_{secrets.token_hex(4)}"
    admin_url = libpq_url(base_url, make_url(base_url).database or "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- the whole hub ------------------------------------------------------------------


def demo_log_dir() -> Path:
    """Where ``hub demo`` writes its processes' logs (emptied at the start of each run)."""
    return REPO_ROOT / os.environ.get("HUB_VAR_DIR", "var") / "demo" / "logs"


def log_problems(log_dir: Path) -> dict[str, int]:
    """Per log file of one run, how many lines are errors or warnings (files without: left out)."""
    problems: dict[str, int] = {}
    for path in sorted(log_dir.glob("*.log")):
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        count = sum(1 for line in lines if is_problem_line(line))
        if count:
            problems[path.name] = count
    return problems


def is_problem_line(line: str) -> bool:
    """A JSON log line at warning level or above, or a traceback."""
    markers = ('"level": "error"', '"level": "warning"', '"level": "critical"', "Traceback")
    return any(marker in line for marker in markers)


def run_hub_demo(arguments: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    """Run ``hub demo --json``; return its figures, or exit loudly unless exactly once."""
    env = dict(os.environ)
    env.pop("HUB_DATABASE_URL", None)
    if database_url is not None:
        env["HUB_DATABASE_URL"] = database_url
    command = [
        sys.executable,
        "-m",
        "hub",
        "demo",
        "--json",
        "--documents",
        str(arguments.documents),
        "--offices",
        str(arguments.offices),
        "--workers",
        str(arguments.workers),
    ]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    figures = last_json_line(completed.stdout)
    if completed.returncode != 0 or figures is None or not figures.get("exactly_once"):
        fail_demo(command, completed)
    return figures


def last_json_line(stdout: str) -> dict[str, Any] | None:
    """The demo's figures: its last stdout line parsed as a JSON object."""
    lines = stdout.strip().splitlines()
    if not lines:
        return None
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return figures if isinstance(figures, dict) else None


def fail_demo(command: list[str], completed: subprocess.CompletedProcess[str]) -> NoReturn:
    """Show what the failed demo printed and exit non-zero."""
    print(f"hub demo failed (exit {completed.returncode}): {' '.join(command)}", file=sys.stderr)
    print(f"--- stdout ---\n{completed.stdout}", file=sys.stderr)
    print(f"--- stderr ---\n{completed.stderr}", file=sys.stderr)
    print(f"logs: {demo_log_dir()}", file=sys.stderr)
    raise SystemExit(1)


# --- the hub core -------------------------------------------------------------------


def run_hub_core(
    arguments: argparse.Namespace, database: str
) -> tuple[dict[str, Any], dict[str, int]]:
    """Run the core path on a fresh store; return its figures and its log problems.

    Exits non-zero, keeping the run's directory with its logs, unless every document
    was delivered exactly once.
    """
    try:
        with core_work_dir() as work_dir:
            with fresh_core_store(arguments, database, work_dir) as database_url:
                plan = CoreRunPlan(
                    database_url=database_url,
                    amqp_url=arguments.amqp_url,
                    documents=arguments.core_documents,
                    offices=arguments.offices,
                    workers=arguments.workers,
                    work_dir=work_dir,
                )
                result = measure_hub_core(plan)
            return result.as_dict(), log_problems(plan.log_dir)
    except CoreRunFailed as exc:
        print(f"hub core run on {database} failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


@contextlib.contextmanager
def fresh_core_store(arguments: argparse.Namespace, database: str, work_dir: Path) -> Iterator[str]:
    """A store URL no earlier run wrote to: a file in ``work_dir`` or a new PG database."""
    if database == "postgresql":
        with fresh_postgres_database(arguments.postgres_url) as database_url:
            yield database_url
    else:
        yield sqlite_url_in(work_dir)


# --- bare stages --------------------------------------------------------------------


def measure_rabbitmq(amqp_url: str, count: int) -> dict[str, float]:
    """Confirmed persistent publishes/s and manually acked consumes/s on a quorum queue."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = f"hub-bench-{secrets.token_hex(4)}"
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    try:
        channel.confirm_delivery()
        properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)

        def publish(_: int) -> None:
            channel.basic_publish("", queue, PAYLOAD, properties, mandatory=True)

        published = rate_per_second(count, publish)
        consumed = consume_and_ack(channel, queue, count)
    finally:
        channel.queue_delete(queue)
        connection.close()
    return {
        "rabbitmq_confirmed_publishes_per_s": published,
        "rabbitmq_acked_consumes_per_s": consumed,
    }


def consume_and_ack(channel: Any, queue: str, count: int) -> float:
    """Drain ``count`` messages from ``queue``, acking each one on its own; return msgs/s."""
    channel.basic_qos(prefetch_count=CONSUME_PREFETCH)
    received = 0
    started = time.perf_counter()
    for method, _properties, _body in channel.consume(queue, inactivity_timeout=10):
        if method is None:
            raise RuntimeError(f"queue {queue} ran dry after {received} of {count} messages")
        channel.basic_ack(method.delivery_tag)
        received += 1
        if received == count:
            break
    elapsed = time.perf_counter() - started
    channel.cancel()
    return round(received / elapsed, 1)


def measure_sqlite_commits(count: int) -> float:
    """One-row commits/s of a 5 KB blob into a WAL, synchronous=NORMAL SQLite file."""
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as directory:
        connection = sqlite3.connect(Path(directory) / "bench.db")
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("CREATE TABLE bench (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            connection.commit()

            def insert_and_commit(_: int) -> None:
                connection.execute("INSERT INTO bench (body) VALUES (?)", (PAYLOAD,))
                connection.commit()

            return rate_per_second(count, insert_and_commit)
        finally:
            connection.close()


def measure_postgres_commits(database_url: str, count: int) -> float:
    """One-row commits/s of a 5 KB bytea into a table of the bench database."""
    url = make_url(database_url)
    with psycopg.connect(libpq_url(database_url, url.database or "postgres")) as connection:
        connection.execute(
            "CREATE TABLE bench_commits (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
        )
        connection.commit()

        def insert_and_commit(_: int) -> None:
            connection.execute("INSERT INTO bench_commits (body) VALUES (%s)", (PAYLOAD,))
            connection.commit()

        return rate_per_second(count, insert_and_commit)


def measure_http_posts(count: int) -> float:
    """requests.Session POSTs/s of a 5 KB body to a freshly started EOD simulator."""
    simulator, base_url = start_simulator("simulators.eod")
    try:
        return http_post_rate(base_url, count)
    finally:
        simulator.stop()


def http_post_rate(
    base_url: str,
    count: int,
    body: bytes = PAYLOAD,
    content_type: str | None = None,
    session: requests.Session | None = None,
) -> float:
    """requests.Session POSTs/s of ``body`` to the EOD simulator at ``base_url``.

    Each POST has an idempotency key of its own, so every one is registered. ``session``
    (closed afterwards) defaults to a plain ``requests.Session()``.
    """
    session = session or requests.Session()
    with session:
        url = f"{base_url}/offices/14/documents"
        type_header = {"Content-Type": content_type} if content_type else {}

        def post(index: int) -> None:
            headers = {"Idempotency-Key": f"bench-{index}-{secrets.token_hex(4)}", **type_header}
            session.post(url, data=body, headers=headers, timeout=30).raise_for_status()

        return rate_per_second(count, post)


def measure_stages(arguments: argparse.Namespace, postgres_url: str | None) -> dict[str, float]:
    """Every bare stage rate this run can measure."""
    stages = measure_rabbitmq(arguments.amqp_url, arguments.broker_messages)
    stages["sqlite_commits_per_s"] = measure_sqlite_commits(arguments.sqlite_rows)
    if postgres_url is not None:
        stages["postgresql_commits_per_s"] = measure_postgres_commits(
            postgres_url, arguments.postgres_rows
        )
    stages["http_posts_per_s"] = measure_http_posts(arguments.http_requests)
    return stages


# --- putting it together ------------------------------------------------------------


def run_benchmark(arguments: argparse.Namespace) -> BenchmarkReport:
    """The demos, the core runs, the bare stages and their ratios, in one run."""
    parameters = {key: getattr(arguments, key) for key in REPORTED_PARAMETERS}
    report = BenchmarkReport(parameters)
    with contextlib.ExitStack() as cleanup:
        postgres_url = None
        if "postgresql" in arguments.databases:
            postgres_url = cleanup.enter_context(fresh_postgres_database(arguments.postgres_url))
        if not arguments.skip_demo:
            run_demos(arguments, postgres_url, report)
        if not arguments.skip_core:
            run_cores(arguments, report)
        print("measuring bare stages ...", file=sys.stderr, flush=True)
        report.stages = measure_stages(arguments, postgres_url)
    report.ratios = compute_ratios(report)
    return report


def run_demos(
    arguments: argparse.Namespace, postgres_url: str | None, report: BenchmarkReport
) -> None:
    """``hub demo`` on each database, its figures and log problems into ``report``."""
    for database in arguments.databases:
        database_url = postgres_url if database == "postgresql" else None
        print(f"running hub demo on {database} ...", file=sys.stderr, flush=True)
        report.demos[database] = run_hub_demo(arguments, database_url)
        report.log_problems[database] = log_problems(demo_log_dir())


def run_cores(arguments: argparse.Namespace, report: BenchmarkReport) -> None:
    """The hub core on each database, each on a fresh store, into ``report``."""
    for database in arguments.databases:
        print(f"running hub core on {database} ...", file=sys.stderr, flush=True)
        figures, problems = run_hub_core(arguments, database)
        report.cores[database] = figures
        report.core_log_problems[database] = problems


def compute_ratios(report: BenchmarkReport) -> dict[str, float]:
    """Each hub rate (demo and core) divided by each stage rate it depends on."""
    ratios: dict[str, float] = {}
    for database, figures in report.demos.items():
        rate_name = demo_rate_name(database)
        ratios |= stage_ratios(rate_name, figures["docs_per_s"], database, report.stages)
    for database, figures in report.cores.items():
        rate_name = core_rate_name(database)
        ratios |= stage_ratios(rate_name, figures[CORE_RATE_FOR_RATIOS], database, report.stages)
    return ratios


def demo_rate_name(database: str) -> str:
    """How the demo's docs/s on ``database`` is named in the ratios."""
    return f"{database}_hub_docs_per_s"


def core_rate_name(database: str) -> str:
    """How the core's docs/s on ``database`` is named in the ratios."""
    return f"{database}_hub_core_docs_per_s"


def stages_paid_by(database: str) -> tuple[str, ...]:
    """The stage rates a document stored in ``database`` depends on."""
    return (
        f"{database}_commits_per_s",
        "rabbitmq_confirmed_publishes_per_s",
        "rabbitmq_acked_consumes_per_s",
        "http_posts_per_s",
    )


def stage_ratios(
    rate_name: str, docs_per_s: float, database: str, stages: dict[str, float]
) -> dict[str, float]:
    """``docs_per_s`` divided by each stage rate measured, keyed ``"<rate> / <stage>"``."""
    ratios: dict[str, float] = {}
    for stage in stages_paid_by(database):
        stage_rate = stages.get(stage)
        if stage_rate:
            ratios[f"{rate_name} / {stage}"] = round(float(docs_per_s) / stage_rate, 3)
    return ratios


# --- output -------------------------------------------------------------------------


def print_table(report: BenchmarkReport) -> None:
    """The figures as tables a person can read."""
    if report.demos:
        print_demo_table(report)
    if report.cores:
        print_core_table(report)
    print("\nbare stages (5 KB payload, one at a time)")
    for stage, rate in report.stages.items():
        print(f"  {stage:<40}{rate:>10}")
    if report.ratios:
        print_ratio_table(report)


def print_demo_table(report: BenchmarkReport) -> None:
    """One line per database for ``hub demo``."""
    size = report.parameters
    print(
        f"\nhub demo: {size['documents']} documents, {size['offices']} offices, "
        f"{size['workers']} workers"
    )
    print(
        f"{'database':<12}{'docs/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'e2e p99 ms':>12}"
        f"{'elapsed s':>11}  log warnings/errors"
    )
    for database, figures in report.demos.items():
        print(
            f"{database:<12}{figures['docs_per_s']:>10}{figures['p50_ms']:>10}"
            f"{figures['p99_ms']:>10}{figures['end_to_end_p99_ms']:>12}"
            f"{figures['elapsed_s']:>11}  {describe_log_problems(report.log_problems, database)}"
        )


def print_core_table(report: BenchmarkReport) -> None:
    """One line per database for the hub core, with what its columns cover."""
    size = report.parameters
    body_bytes = next(iter(report.cores.values()))["mean_body_bytes"]
    print(
        f"\nhub core (stored → EOD, no inbox): {size['core_documents']} documents, "
        f"{size['offices']} offices, {size['workers']} workers, {body_bytes} B bodies"
    )
    print(
        f"{'database':<12}{'docs/s':>10}{'steady/s':>10}{'1st s':>8}{'elapsed s':>11}"
        f"{'wait p50':>10}{'wait p99':>10}  log warnings/errors"
    )
    for database, figures in report.cores.items():
        print(
            f"{database:<12}{figures['docs_per_s']:>10}"
            f"{figures['docs_per_s_after_first_delivery']:>10}"
            f"{figures['first_delivery_s']:>8}{figures['elapsed_s']:>11}"
            f"{figures['backlog_wait_p50_ms']:>10}{figures['backlog_wait_p99_ms']:>10}"
            f"  {describe_log_problems(report.core_log_problems, database)}"
        )
    print("  docs/s, elapsed: from launching relay + workers (start-up included);")
    print("  steady/s: after the 1st delivery (at '1st s'); wait p50/p99 ms: received →")
    print("  delivered of a preloaded backlog, i.e. mostly queueing, not per-document latency")


def print_ratio_table(report: BenchmarkReport) -> None:
    """Hub docs/s ÷ stage rate: one row per stage, one column per hub run."""
    columns = [(f"demo {db}", db, demo_rate_name(db)) for db in report.demos]
    columns += [(f"core {db}", db, core_rate_name(db)) for db in report.cores]
    rows = {
        "one-row commits, own database": "{database}_commits_per_s",
        "rabbitmq confirmed publishes": "rabbitmq_confirmed_publishes_per_s",
        "rabbitmq acked consumes": "rabbitmq_acked_consumes_per_s",
        "http posts": "http_posts_per_s",
    }
    print(
        f"\nhub docs/s ÷ stage rate (core: steady/s; a document costs about "
        f"{COMMITS_PER_DOCUMENT} commits and {CONFIRMED_PUBLISHES_PER_DOCUMENT} confirmed "
        "publishes)"
    )
    print(f"  {'stage':<30}" + "".join(f"{label:>17}" for label, _, _ in columns))
    for row_label, stage_pattern in rows.items():
        cells = []
        for _, database, rate_name in columns:
            stage = stage_pattern.format(database=database)
            cells.append(f"{report.ratios.get(f'{rate_name} / {stage}', '-'):>17}")
        print(f"  {row_label:<30}" + "".join(cells))


def describe_log_problems(problems: dict[str, dict[str, int]], database: str) -> str:
    """``"worker-0.log: 3, relay.log: 1"``, or ``"none"``."""
    found = problems.get(database) or {}
    return ", ".join(f"{name}: {count}" for name, count in found.items()) or "none"


def report_as_json(report: BenchmarkReport) -> dict[str, Any]:
    """Everything measured, plus the per-document costs the ratios are read against."""
    return {
        "parameters": report.parameters,
        "demos": report.demos,
        "cores": report.cores,
        "stages": report.stages,
        "ratios": report.ratios,
        "log_problems": report.log_problems,
        "core_log_problems": report.core_log_problems,
        "context": {
            "commits_per_document": COMMITS_PER_DOCUMENT,
            "confirmed_publishes_per_document": CONFIRMED_PUBLISHES_PER_DOCUMENT,
            "core_rate_in_ratios": CORE_RATE_FOR_RATIOS,
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the tables (and, with --json, one JSON line)."""
    arguments = parse_arguments(argv)
    report = run_benchmark(arguments)
    print_table(report)
    if arguments.json:
        print(json.dumps(report_as_json(report)))


if __name__ == "__main__":
    main()
