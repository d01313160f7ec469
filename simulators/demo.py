"""``hub demo``: the whole hub on the embedded defaults, fed by simulated citizens.

Starts the simulators (ePUAP, e-Doręczenia, EOD, the tax system, the registers), the
outbox relay, workers, the poller and the HTTP API as real processes against the local
RabbitMQ and a fresh SQLite store (or ``HUB_DATABASE_URL``); files N documents (general
letters and every service's own form) with the offices of the whole region (or its
first K), has the domain systems answer some of them with decisions, waits until each
is delivered or dead, and prints a summary. It exits 0 only if every filing reached its
systems exactly once and every decision went back with its UPD.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
import requests
from sqlalchemy import func, select

from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.errors import ClientRegistryError, ConfigurationError, HubError
from hub.identity import ClientRegistry
from hub.region import Region, load_region
from hub.region_render import render_region
from hub.settings import Settings
from hub.signing.keystore import init_test_pki
from hub.states import MessageStatus
from hub.store.migrate import upgrade_database
from hub.store.models import AttemptRow, MessageRow, ReceiptRow
from hub.store.repository import Store
from monitoring.auth import user_entry
from simulators.epuap.documents import generate_pismo_ogolne
from simulators.forms import (
    DECIDING_SYSTEMS,
    FINANCE_SYSTEM,
    Decision,
    Filing,
    decision_on,
    filings,
    invoices,
    offices_offering,
)
from simulators.processes import ChildProcess, start_hub_process, start_simulator, stop_all
from simulators.serving import free_port

DEMO_QUEUE_SUFFIX = "-demo"
PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
# What the demo files: general letters, and the forms of the services that have one.
DEMO_DOCUMENT_TYPES = (
    PISMO_OGOLNE,
    "urn:hub:wzor:podatek-od-nieruchomosci:1",
    "urn:hub:wzor:zezwolenie-alkoholowe:1",
    "urn:hub:wzor:zajecie-pasa-drogowego:1",
)
DECISION_TYPE = "urn:hub:eod:decyzja:1"
MAX_DECISIONS = 50
DEMO_OPERATOR = "operator"
T = TypeVar("T")
FINAL_STATUSES = {MessageStatus.DELIVERED, MessageStatus.DEAD, MessageStatus.REJECTED}


@dataclass(frozen=True)
class DemoResult:
    """The figures of one demo run."""

    submitted: int
    delivered: int
    dead_lettered: int
    rejected: int
    duplicates_at_destination: int
    missing_at_destination: int
    elapsed_s: float
    docs_per_s: float
    p50_ms: float
    p99_ms: float
    end_to_end_p99_ms: float
    database: str
    offices: int
    workers: int
    delivered_by_source: dict[str, int]
    decisions_sent: int
    decisions_delivered: int
    upds_filed: int
    seals_checked_by_eod: int
    # Filings by document type, and what the domain systems (tax, registers) registered.
    filed_by_type: dict[str, int]
    registered_by_domain_systems: dict[str, int]
    # The registers' acknowledgements the hub read back from their .out queues.
    register_acks_filed: int
    # Purchase invoices (FA(3), as from KSeF) handed over, and booked by finance systems.
    invoices_sent: int
    invoices_booked: int
    # Deliveries made by each worker process, and by each of their handler threads: how
    # evenly the shared queues spread the work.
    deliveries_by_worker: dict[str, int]
    deliveries_by_thread: dict[str, int]

    @property
    def exactly_once(self) -> bool:
        """Every document delivered, none twice, none missing at the destination."""
        return (
            self.delivered == self.submitted
            and self.duplicates_at_destination == 0
            and self.missing_at_destination == 0
        )

    @property
    def succeeded(self) -> bool:
        """Exactly once in, and every decision out delivered with its UPD filed."""
        return (
            self.exactly_once
            and self.upds_filed == self.decisions_sent
            and self.seals_checked_by_eod >= self.delivered
            and sum(self.registered_by_domain_systems.values()) >= self.forms
            and self.register_acks_filed >= self.registered_by_registers
            and self.invoices_booked >= self.invoices_sent
        )

    @property
    def registered_by_registers(self) -> int:
        """Forms the registers (not the tax system) registered."""
        return by_registers(self.registered_by_domain_systems)

    @property
    def forms(self) -> int:
        """Filings on a service's own form (not general letters)."""
        return sum(self.filed_by_type.values()) - self.filed_by_type.get(PISMO_OGOLNE, 0)


class OfficeCount(click.ParamType[int | None, object]):
    """A number of offices, or ``all`` (None) for the whole catalogue."""

    name = "N|all"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | None:
        """``all`` → None, else a positive whole number."""
        if value is None or value == "all":
            return None
        try:
            count = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither a number of offices nor 'all'", param, ctx)
        if count < 1:
            self.fail("at least one office", param, ctx)
        return count


@click.command("demo")
@click.option("--documents", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--offices",
    type=OfficeCount(),
    default="all",
    show_default=True,
    help="How many offices of the catalogue, from its start (all: the whole region).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes."
)
@click.option("--timeout-s", type=float, default=600.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of figures.")
@click.option("--serve", is_flag=True, help="Keep the hub running (HTTP API) until Ctrl-C.")
@click.pass_obj
def demo_command(
    settings: Settings,
    *,
    documents: int,
    offices: int | None,
    workers: int,
    timeout_s: float,
    as_json: bool,
    serve: bool,
) -> None:
    """Carry N simulated filings to the whole region (or its first K offices), end to end."""
    stop_on_sigterm()
    demo = Demo(_demo_settings(settings), offices, workers, serve=serve)
    try:
        demo.start(serve)
        result = demo.run(documents, timeout_s)
        _report(result, as_json)
        if serve:
            demo.serve_until_interrupted()
    finally:
        demo.stop()
    if not result.succeeded:
        raise SystemExit(1)


# The registers' queue templates where the region names none (the registers-amqp kind's
# defaults, one interface per office); the sample region's registers share one each.
REGISTER_QUEUE_IN = "legacy.{system}.{office}.in"
REGISTER_QUEUE_OUT = "legacy.{system}.{office}.out"
REGISTER_TEMPLATES = {"queue_in": REGISTER_QUEUE_IN, "queue_out": REGISTER_QUEUE_OUT}
# Where the demo's registers find their own broker users (hub amqp-tenant writes it, 0600).
REGISTER_CREDENTIALS = "registers-tenants.json"


def with_register_queues(region: Region, prefix: str) -> Region:
    """``region`` with its registers' queues, as its templates name them, under ``prefix``."""
    endpoints = {
        name: dataclasses.replace(
            endpoint,
            options={
                **endpoint.options,
                **{
                    option: prefix + str(endpoint.options.get(option, default))
                    for option, default in REGISTER_TEMPLATES.items()
                },
            },
        )
        if endpoint.kind == "registers-amqp"
        else endpoint
        for name, endpoint in region.endpoints.items()
    }
    return dataclasses.replace(region, endpoints=endpoints)


def register_templates(region: Region) -> dict[str, tuple[str, str]]:
    """Each register system's ``queue_in`` and ``queue_out`` templates (its first endpoint's)."""
    templates: dict[str, tuple[str, str]] = {}
    for endpoint in region.endpoints.values():
        if endpoint.kind == "registers-amqp" and endpoint.system not in templates:
            queue_in, queue_out = (
                str(endpoint.options.get(option, default))
                for option, default in REGISTER_TEMPLATES.items()
            )
            templates[endpoint.system] = (queue_in, queue_out)
    return templates


def register_queue_pairs(region: Region) -> list[tuple[str, str]]:
    """Every register interface of the region once, as (documents, answers) queue names.

    A shared interface (templates without ``{office}``) is one pair for all its offices.
    """
    pairs: dict[tuple[str, str], None] = {}
    for endpoint in region.endpoints.values():
        if endpoint.kind == "registers-amqp":
            values = {"system": endpoint.system, "office": endpoint.office}
            documents, answers = (
                str(endpoint.options.get(option, default)).format(**values)
                for option, default in REGISTER_TEMPLATES.items()
            )
            pairs.setdefault((documents, answers))
    return list(pairs)


def demo_offices(region: Region, count: int | None) -> list[str]:
    """The first ``count`` offices of the catalogue (all of them if None), a county among them.

    Road-lane permits are filed with counties, which come late in the catalogue; with
    room for more than one office the demo swaps its last office for the first county.

    Raises:
        ConfigurationError: the catalogue has fewer offices than asked for.
    """
    if count is None:
        return list(region.offices)
    if count > len(region.offices):
        raise ConfigurationError(
            f"the catalogue has {len(region.offices)} offices; asked for {count}"
        )
    chosen = list(region.offices)[:count]
    counties = [office.id for office in offices_offering(region, "zajecie-pasa-drogowego")]
    if count > 1 and counties and not set(chosen) & set(counties):
        chosen[-1] = counties[0]
    return chosen


def demo_pki(settings: Settings, office_ids: Sequence[str]) -> Path:
    """Make the demo's test certificates; return the platforms' keystore for the simulators.

    Every ePUAP call is signed and every e-Doręczenia evidence is sealed: the simulated
    platforms hold their own identities (``epuap``, ``edoreczenia``) in
    ``<var_dir>/platforms``, out of the keystore the hub reads, and the hub pins their
    certificates in its trust store's ``platforms/``, as ``hub keys init`` does.
    """
    platform_keys = settings.var_dir / "platforms"
    init_test_pki(
        settings.keys,
        settings.trust,
        ["hub", "epuap", "edoreczenia", *office_ids],
        ca_dir=settings.var_dir / "ca",
        platforms_dir=platform_keys,
        password=settings.keystore_password,
    )
    return platform_keys


def platform_simulators(platform_keys: Path) -> dict[str, tuple[str, ...]]:
    """The national platforms' simulators (module and arguments), each with its identity."""
    return {
        "epuap": ("simulators.epuap", "--keystore", str(platform_keys)),
        "edoreczenia": ("simulators.edoreczenia", "--keystore", str(platform_keys)),
    }


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the run like Ctrl-C: the children are stopped, not orphaned."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _demo_settings(settings: Settings) -> Settings:
    demo_dir = settings.var_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    # The demo's queues are its own (e.g. hub-demo), emptied at start and removed at the end.
    changes: dict[str, Any] = {
        "queue_prefix": settings.queue_prefix + DEMO_QUEUE_SUFFIX,
        "var_dir": demo_dir,
    }
    if "HUB_DATABASE_URL" not in os.environ:
        database = (demo_dir / "hub.db").resolve()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        changes["database_url"] = f"sqlite:///{database}"
    return settings.replace(**changes)


class Demo:
    """The simulators and hub processes of one demo run."""

    def __init__(
        self,
        settings: Settings,
        office_count: int | None,
        worker_count: int,
        *,
        serve: bool = False,
    ) -> None:
        self.settings = settings
        region = load_region(settings.region_path)
        self.office_ids = demo_offices(region, office_count)
        # The registers' queues are the demo's own from the start, so that resetting them
        # before the run and after it names the same ones.
        self.region: Region = with_register_queues(
            region.restricted_to(self.office_ids), self.register_queue_prefix
        )
        self.worker_count = worker_count
        self.children: list[ChildProcess] = []
        self.urls: dict[str, str] = {}
        self.store = Store.from_url(settings.database_url)
        # Each office's systems call the intake as that office's own client (made at start).
        self.intake_tokens: dict[str, str] = {}
        # The demo's own dashboard login, made afresh each run and printed at start; a
        # configured dashboard_users is left in charge instead.
        self.dashboard_password = "" if settings.dashboard_users else secrets.token_urlsafe(12)
        self.http_port = settings.http_port if serve else free_port()
        self.hub_url = f"http://{settings.http_host}:{self.http_port}"
        self.started_at = datetime.now(UTC)

    def start(self, serve: bool) -> None:
        """Check the broker, reset the demo's queues, start simulators and hub processes."""
        self._reset_queues()
        self._declare_queues()
        upgrade_database(self.settings)
        self.intake_tokens = self._office_clients()
        simulators = {
            **platform_simulators(demo_pki(self.settings, self.office_ids)),
            "eod": (
                "simulators.eod",
                "--trust-ca",
                str(self.settings.keys / "ca.pem"),
                "--require-seal",
            ),
            **self._domain_simulators(self._create_register_tenants()),
        }
        for name, (module, *arguments) in simulators.items():
            child, url = start_simulator(module, *arguments)
            self.children.append(child)
            self.urls[name] = url
        # Reload with the simulators' real addresses filled into the region's URLs.
        environ = {
            **os.environ,
            "HUB_EPUAP_URL": self.urls["epuap"],
            "HUB_EOD_URL": self.urls["eod"],
            "HUB_EDORECZENIA_URL": self.urls["edoreczenia"],
            "HUB_TAX_URL": self.urls.get("tax", ""),
            "HUB_FINANCE_URL": self.urls.get("finance", ""),
            "HUB_REGISTERS_AMQP_URL": self.settings.amqp_url,
        }
        region = load_region(self.settings.region_path, environ).restricted_to(self.office_ids)
        self.region = with_register_queues(region, self.register_queue_prefix)
        region_path = self._write_region()
        env = self._child_env(region_path)
        log_dir = self.settings.var_dir / "logs"
        # Each run's logs start empty, like its database.
        for old_log in log_dir.glob("*.log"):
            old_log.unlink()
        self.children.append(start_hub_process("relay", ["relay"], env, log_dir))
        for number in range(self.worker_count):
            self.children.append(start_hub_process(f"worker-{number}", ["worker"], env, log_dir))
        self.children.append(start_hub_process("poller", ["poll"], env, log_dir))
        # The HTTP API always runs: the simulated EOD hands decisions over through it.
        self.children.append(start_hub_process("serve", ["serve", "--workers", "1"], env, log_dir))
        if self.dashboard_password:
            click.echo(
                f"dashboard: {self.hub_url}/dashboard/ "
                f"(login {DEMO_OPERATOR} / {self.dashboard_password})",
                err=True,
            )

    def run(self, documents: int, timeout_s: float) -> DemoResult:
        """Fill the inboxes, wait for every filing to settle, answer some, and measure."""
        self.started_at = datetime.now(UTC)
        started = time.monotonic()
        self._enqueue(documents)
        rows = self._wait_until_settled(documents, started + timeout_s)
        elapsed_s = max(time.monotonic() - started, 1e-9)
        decisions = DecisionRound(self).run(rows, time.monotonic() + timeout_s)
        booked = self._book_invoices(documents // 20, time.monotonic() + timeout_s)
        return self._result(documents, rows, elapsed_s, decisions, booked)

    def serve_until_interrupted(self) -> None:
        """Keep everything running until Ctrl-C."""
        click.echo(
            f"hub serving on http://{self.settings.http_host}:{self.settings.http_port} "
            f"(ePUAP simulator {self.urls['epuap']}, EOD simulator {self.urls['eod']}); "
            "Ctrl-C stops",
            err=True,
        )
        try:
            while all(child.alive() for child in self.children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            return

    def stop(self) -> None:
        """Stop every process this demo started and remove the demo's queues."""
        stop_all(self.children)
        self.store.close()
        with contextlib.suppress(HubError):
            self._reset_queues()

    def _reset_queues(self) -> None:
        connection = connect(self.settings.amqp_url)
        try:
            with translate_broker_errors(self.settings.amqp_url):
                channel = connection.channel()
                self.settings.topology.delete(channel)
                for documents, answers in register_queue_pairs(self.region):
                    for queue in (documents, answers, f"{answers}.parked"):
                        channel.queue_delete(queue)
                    # The answers exchange bears the .out queue's name.
                    channel.exchange_delete(answers)
        finally:
            close_quietly(connection)

    def _declare_queues(self) -> None:
        # Once, before the hub's processes start, so the simulators and the first
        # publishes find the queues there.
        connection = connect(self.settings.amqp_url)
        try:
            with translate_broker_errors(self.settings.amqp_url):
                self.settings.topology.declare(connection.channel())
        finally:
            close_quietly(connection)

    def _write_region(self) -> Path:
        path = self.settings.var_dir / "region.toml"
        path.write_text(render_region(self.region), encoding="utf-8")
        return path

    def _child_env(self, region_path: Path) -> dict[str, str]:
        return {
            "HUB_DATABASE_URL": self.settings.database_url,
            "HUB_AMQP_URL": self.settings.amqp_url,
            "HUB_QUEUE_PREFIX": self.settings.queue_prefix,
            "HUB_REGION_PATH": str(region_path.resolve()),
            "HUB_VAR_DIR": str(self.settings.var_dir.resolve()),
            "HUB_POLL_INTERVAL_S": "0.2",
            "HUB_LOG_FORMAT": "json",
            "HUB_KEYSTORE_DIR": str(self.settings.keys.resolve()),
            "HUB_TRUST_STORE_DIR": str(self.settings.trust.resolve()),
            "HUB_HTTP_PORT": str(self.http_port),
            **self._dashboard_env(),
        }

    def _office_clients(self) -> dict[str, str]:
        """One intake client per office for its systems that answer; their tokens by office.

        A demo database kept from an earlier run still has them: they get new tokens.
        """
        registry = ClientRegistry(self.store)
        systems = sorted({"eod", "ksef", *(system for system, _ in DECIDING_SYSTEMS.values())})
        tokens = {}
        for office in self.office_ids:
            name = f"demo-{office}"
            try:
                tokens[office] = registry.add(name, office, sources=systems)
            except ClientRegistryError:
                tokens[office] = registry.rotate(name, timedelta(0))
        return tokens

    def _dashboard_env(self) -> dict[str, str]:
        if not self.dashboard_password:
            return {}
        return {
            "HUB_DASHBOARD_USERS": user_entry(DEMO_OPERATOR, "operator", self.dashboard_password)
        }

    @property
    def register_queue_prefix(self) -> str:
        """The demo's registers read queues of its own, emptied with the demo's."""
        return f"{self.settings.queue_prefix}."

    def _create_register_tenants(self) -> Path | None:
        """Give each of the demo's registers a broker user of its own; the credentials file.

        Runs ``hub amqp-tenant add-all --rotate`` over the demo's registers (fresh
        passwords each run, like the dashboard's; one ``rabbitmqctl import_definitions``
        for them all), which also declares their queues and answers exchanges, so the
        register simulators, which may configure nothing, find them. None: no registers.
        """
        if not register_queue_pairs(self.region):
            return None
        region_path = self.settings.var_dir / "registers-region.toml"
        region_path.write_text(render_region(self.region), encoding="utf-8")
        credentials = (self.settings.var_dir / REGISTER_CREDENTIALS).resolve()
        command = ["amqp-tenant", "add-all", "--rotate", "--write-credentials", str(credentials)]
        completed = subprocess.run(
            [sys.executable, "-m", "hub", *command],
            env={**os.environ, "HUB_REGION_PATH": str(region_path.resolve())},
            capture_output=True,
            check=False,
        )
        if completed.returncode != 0:
            raise ConfigurationError(
                "hub amqp-tenant add-all failed: "
                + completed.stderr.decode(errors="replace").strip()[-500:]
            )
        click.echo(completed.stdout.decode(errors="replace").strip(), err=True)
        return credentials

    def _domain_simulators(self, register_credentials: Path | None) -> dict[str, tuple[str, ...]]:
        """The tax system and the registers the chosen offices' services need."""
        wanted: dict[str, tuple[str, ...]] = {}
        if offices_offering(self.region, "podatek-od-nieruchomosci"):
            wanted["tax"] = ("simulators.tax",)
        if any(e.system == FINANCE_SYSTEM for e in self.region.endpoints.values()):
            wanted["finance"] = ("simulators.finance",)
        templates = register_templates(self.region)
        for system, service in (
            ("alkohol", "zezwolenie-alkoholowe"),
            ("drogi", "zajecie-pasa-drogowego"),
        ):
            offices = offices_offering(self.region, service)
            if offices and system in templates:
                queue_in, queue_out = templates[system]
                # A shared interface (the sample region's) is one simulator connection,
                # whatever the offices; per-office templates need every office named.
                office_flags = (
                    [flag for o in offices for flag in ("--office", o.id)]
                    if "{office}" in queue_in + queue_out
                    else []
                )
                wanted[system] = (
                    "simulators.registers",
                    *("--system", system, "--amqp-url", self.settings.amqp_url),
                    *("--queue-in", queue_in, "--queue-out", queue_out),
                    *(("--credentials", str(register_credentials)) if register_credentials else ()),
                    *office_flags,
                )
        return wanted

    def _enqueue(self, documents: int) -> None:
        # One filing in 20 of each service with a form of its own (a tax declaration, an
        # alcohol permit, a road-lane permit), where the offices offer it; of the general
        # letters the rest, every fifth through e-Doręczenia, the others through ePUAP.
        forms = filings(self.region, documents // 20)
        self._enqueue_forms(forms)
        letters = documents - len(forms)
        by_edoreczenia = letters // 5
        self._enqueue_epuap(letters - by_edoreczenia)
        self._enqueue_edoreczenia(by_edoreczenia)

    def _enqueue_forms(self, forms: list[Filing]) -> None:
        for number, filing in enumerate(forms):
            mailbox = filing.office.esp_address.lstrip("/")
            requests.post(
                f"{self.urls['epuap']}/_sim/mailboxes/{mailbox}/raw",
                params={"filename": f"{filing.service}-{number}.xml"},
                data=filing.document,
                timeout=30,
            ).raise_for_status()

    def _enqueue_edoreczenia(self, documents: int) -> None:
        offices = [office for office in self.region.offices.values() if office.edoreczenia_address]
        rng = random.Random(2027)
        for number in range(documents if offices else 0):
            office = offices[number % len(offices)]
            filing = generate_pismo_ogolne(rng, office_name=office.name, office_teryt=office.id)
            content = base64.b64encode(filing.content).decode()
            response = requests.post(
                f"{self.urls['edoreczenia']}/_sim/messages",
                json={
                    "to": office.edoreczenia_address,
                    "from": f"AE:PL-{rng.randrange(10**5):05d}-{rng.randrange(10**5):05d}-OBYWA-01",
                    "subject": filing.title,
                    "attachments": [
                        {
                            "filename": "pismo.xml",
                            "contentType": "application/xml",
                            "content": content,
                        }
                    ],
                },
                timeout=30,
            )
            response.raise_for_status()

    def _enqueue_epuap(self, documents: int) -> None:
        offices = list(self.region.offices.values())
        counts = [
            documents // len(offices) + (1 if index < documents % len(offices) else 0)
            for index in range(len(offices))
        ]
        mailboxes = [
            {
                "address": office.esp_address,
                "office_name": office.name,
                "office_teryt": office.id.replace("_", ""),
                "count": count,
            }
            for office, count in zip(offices, counts, strict=True)
            if count
        ]
        response = requests.post(
            f"{self.urls['epuap']}/_sim/documents",
            json={"mailboxes": mailboxes, "seed": 2026, "attachments": 1},
            timeout=120,
        )
        response.raise_for_status()

    def _wait_until_settled(self, documents: int, deadline: float) -> list[MessageRow]:
        rows: list[MessageRow] = []
        while time.monotonic() < deadline:
            rows = self._demo_messages()
            settled = sum(1 for row in rows if MessageStatus(row.status) in FINAL_STATUSES)
            if settled >= documents:
                break
            if not all(child.alive() for child in self.children):
                dead = [child.name for child in self.children if not child.alive()]
                raise HubError(
                    f"demo process(es) exited early: {dead}; see {self.settings.var_dir / 'logs'}"
                )
            time.sleep(0.25)
        return rows

    def _demo_messages(self) -> list[MessageRow]:
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(MessageRow).where(
                        MessageRow.received_at >= self.started_at,
                        MessageRow.document_type.in_(DEMO_DOCUMENT_TYPES),
                    )
                )
            )

    def _deliveries_by_consumer(self) -> dict[str, dict[str, int]]:
        with self.store.session() as session:
            consumers = session.scalars(
                select(AttemptRow.worker).where(
                    AttemptRow.started_at >= self.started_at, AttemptRow.outcome == "delivered"
                )
            ).all()
        by_thread = Counter(consumers)
        by_worker = Counter(name.split("/", 1)[0] for name in consumers)
        return {
            "deliveries_by_worker": dict(sorted(by_worker.items())),
            "deliveries_by_thread": dict(sorted(by_thread.items())),
        }

    def _result(
        self,
        documents: int,
        rows: list[MessageRow],
        elapsed_s: float,
        decisions: DecisionFigures,
        booked: InvoiceFigures,
    ) -> DemoResult:
        delivered = [row for row in rows if row.status == MessageStatus.DELIVERED]
        hub_ms = sorted(_ms(row.received_at, row.delivered_at) for row in delivered)
        end_to_end_ms = sorted(
            _ms(row.submitted_at or row.received_at, row.delivered_at) for row in delivered
        )
        arrivals = requests.get(f"{self.urls['eod']}/_sim/received", timeout=30).json()
        eod_stats = requests.get(f"{self.urls['eod']}/_sim/stats", timeout=30).json()
        delivered_ids = {row.id for row in delivered}
        registered = self._registered_by_domain_systems(
            expected=sum(1 for row in delivered if row.document_type != PISMO_OGOLNE)
        )
        return DemoResult(
            submitted=documents,
            delivered=len(delivered),
            dead_lettered=sum(1 for row in rows if row.status == MessageStatus.DEAD),
            rejected=sum(1 for row in rows if row.status == MessageStatus.REJECTED),
            duplicates_at_destination=sum(entry["count"] - 1 for entry in arrivals.values()),
            missing_at_destination=len(delivered_ids - set(arrivals)),
            elapsed_s=round(elapsed_s, 3),
            docs_per_s=round(len(delivered) / elapsed_s, 1),
            p50_ms=_percentile(hub_ms, 50),
            p99_ms=_percentile(hub_ms, 99),
            end_to_end_p99_ms=_percentile(end_to_end_ms, 99),
            database="sqlite"
            if self.settings.is_sqlite
            else self.settings.database_url.split(":", 1)[0],
            offices=len(self.region.offices),
            workers=self.worker_count,
            delivered_by_source=dict(Counter(row.source for row in delivered)),
            decisions_sent=decisions.sent,
            decisions_delivered=decisions.delivered,
            upds_filed=decisions.upds_filed,
            seals_checked_by_eod=int(eod_stats.get("sealed", 0)),
            filed_by_type=dict(Counter(row.document_type for row in rows)),
            registered_by_domain_systems=registered,
            register_acks_filed=self._register_acks_filed(expected=by_registers(registered)),
            invoices_sent=booked.sent,
            invoices_booked=booked.booked,
            **self._deliveries_by_consumer(),
        )

    def _registered_by_domain_systems(self, expected: int, wait_s: float = 30.0) -> dict[str, int]:
        """What the tax system and the registers registered (once each), by system.

        A register reads its queue after the hub's delivery is confirmed, so the count
        is read again for a while until every form is there.
        """

        def registered() -> dict[str, int]:
            return {
                system: self._simulator_registered(system)
                for system in ("tax", "alkohol", "drogi")
                if system in self.urls
            }

        return read_until(
            registered, lambda counts: sum(counts.values()) >= expected, time.monotonic() + wait_s
        )

    def _simulator_registered(self, system: str) -> int:
        return int(requests.get(f"{self.urls[system]}/_sim/stats", timeout=30).json()["registered"])

    def _book_invoices(self, count: int, deadline: float) -> InvoiceFigures:
        """Hand ``count`` purchase invoices to the intake, as the offices' KSeF link would,
        and wait until the finance systems booked them (once each)."""
        made = invoices(self.region, count)
        for invoice in made:
            requests.post(
                f"{self.hub_url}/api/documents",
                data=invoice.document,
                headers={
                    "Content-Type": "application/xml",
                    "Authorization": f"Bearer {self.intake_tokens[invoice.office.id]}",
                    "X-Hub-Source": "ksef",
                    "X-Hub-Office": invoice.office.id,
                    "Idempotency-Key": f"ksef-{invoice.ksef_number}",
                    "X-Hub-Header-ksef-number": invoice.ksef_number,
                    "X-Hub-Header-filename": "faktura.xml",
                },
                timeout=30,
            ).raise_for_status()
        if not made:
            return InvoiceFigures(0, 0)
        booked = read_until(
            lambda: self._simulator_registered("finance"), lambda n: n >= len(made), deadline
        )
        return InvoiceFigures(len(made), booked)

    def _register_acks_filed(self, expected: int, wait_s: float = 30.0) -> int:
        """Registers' acknowledgements filed as receipts (the poller reads them in rounds)."""

        def filed() -> int:
            with self.store.session() as session:
                count = session.scalar(
                    select(func.count(func.distinct(ReceiptRow.message_id))).where(
                        ReceiptRow.kind == "register-ack"
                    )
                )
            return int(count or 0)

        return read_until(filed, lambda n: n >= expected, time.monotonic() + wait_s)


def read_until(read: Callable[[], T], done: Callable[[T], bool], deadline: float) -> T:
    """Read a figure every half second until it is ``done`` or the deadline passes; the last one.

    The simulators and the hub's poller catch up on their own time, so the demo reads
    their counts again for a while before it reports them.
    """
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def by_registers(registered: dict[str, int]) -> int:
    """Of the forms the domain systems registered, those the registers (not tax) did."""
    return sum(count for system, count in registered.items() if system != "tax")


@dataclass(frozen=True)
class InvoiceFigures:
    """Purchase invoices handed to the intake, and booked by the finance systems."""

    sent: int
    booked: int


@dataclass(frozen=True)
class DecisionFigures:
    """How the way back went: decisions handed over, delivered, and UPDs filed."""

    sent: int
    delivered: int
    upds_filed: int


class DecisionRound:
    """The offices' systems answer some filings with decisions, through the hub's intake.

    General letters are answered by the EOD; tax declarations by the tax system (its own
    JSON) and permit applications by their registers (their own XML), which the hub maps
    into letters. Each decision is routed to the office's ePUAP sending endpoint, signed
    with the office's key, delivered with ``dorecz``; the simulated citizen collects it,
    and the UPD comes back to the office's mailbox, where the hub pulls and files it.
    """

    def __init__(self, demo: Demo) -> None:
        self._demo = demo

    def run(self, filings: list[MessageRow], deadline: float) -> DecisionFigures:
        """Answer up to a tenth of the ePUAP filings; wait for their UPDs."""
        answered = []
        for document_type in DEMO_DOCUMENT_TYPES:
            of_type = [
                row
                for row in filings
                if row.source == "epuap"
                and row.status == "delivered"
                and row.document_type == document_type
            ]
            answered += of_type[: max(1, len(of_type) // 10)]
        answered = answered[:MAX_DECISIONS]
        self._wait_for_intake(deadline)
        ids = [self._hand_over(filing) for filing in answered]
        return self._wait_for_upds(ids, deadline)

    def _hand_over(self, filing: MessageRow) -> str:
        headers = json.loads(filing.headers)
        office = self._demo.region.offices[filing.destination]
        decision = decision_on(filing.document_type, office, filing.correlation_id) or Decision(
            "eod",
            DECISION_TYPE,
            "application/xml",
            (
                f'<d:Decyzja xmlns:d="{DECISION_TYPE}"><d:Sprawa>{filing.correlation_id}'
                "</d:Sprawa><d:Tresc>Organ rozpatrzył pismo i udziela odpowiedzi.</d:Tresc>"
                "</d:Decyzja>"
            ).encode(),
        )
        response = requests.post(
            f"{self._demo.hub_url}/api/documents",
            data=decision.document,
            headers={
                "Content-Type": decision.content_type,
                "X-Hub-Document-Type": decision.document_type,
                "Authorization": f"Bearer {self._demo.intake_tokens[filing.destination]}",
                "X-Hub-Source": decision.system,
                "X-Hub-Office": filing.destination,
                "Idempotency-Key": f"decision-{filing.id}",
                "X-Hub-Correlation-ID": filing.correlation_id,
                "X-Hub-Header-epuap-recipient": headers["epuap-reply-to"],
                "X-Hub-Header-filename": "decyzja.xml",
            },
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["envelope_id"])

    def _wait_for_intake(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self._demo.hub_url}/healthz", timeout=2).ok:
                    return
            time.sleep(0.2)
        raise HubError(f"the hub's HTTP API at {self._demo.hub_url} did not come up")

    def _wait_for_upds(self, ids: list[str], deadline: float) -> DecisionFigures:
        return read_until(
            lambda: self._count(ids), lambda figures: figures.upds_filed >= len(ids), deadline
        )

    def _count(self, ids: list[str]) -> DecisionFigures:
        with self._demo.store.session() as session:
            delivered = session.scalar(
                select(func.count())
                .select_from(MessageRow)
                .where(MessageRow.id.in_(ids), MessageRow.status == MessageStatus.DELIVERED.value)
            )
            filed = session.scalar(
                select(func.count(func.distinct(ReceiptRow.message_id))).where(
                    ReceiptRow.message_id.in_(ids),
                    ReceiptRow.kind == "UPD",
                    ReceiptRow.signature_valid.is_(True),
                )
            )
        return DecisionFigures(len(ids), int(delivered or 0), int(filed or 0))


def _ms(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return (end - start).total_seconds() * 1000


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 1)


def _report(result: DemoResult, as_json: bool) -> None:
    verdict = "every document delivered exactly once" if result.exactly_once else "NOT exactly once"
    click.echo(
        f"demo: {result.submitted} filings to {result.offices} offices on {result.database}: "
        f"{result.delivered} delivered, {result.dead_lettered} dead, {result.rejected} rejected, "
        f"{result.duplicates_at_destination} duplicates at the EOD; {verdict}; "
        f"the EOD checked the hub's seal on {result.seals_checked_by_eod} deliveries"
    )
    click.echo(
        f"demo: {result.elapsed_s} s, {result.docs_per_s} docs/s, "
        f"hub latency p50 {result.p50_ms} ms, "
        f"p99 {result.p99_ms} ms (inbox to EOD p99 {result.end_to_end_p99_ms} ms)"
    )
    threads = sorted(result.deliveries_by_thread.values())
    click.echo(
        f"demo: deliveries by worker process {sorted(result.deliveries_by_worker.values())}, "
        f"by handler thread {threads[0] if threads else 0}-{threads[-1] if threads else 0} "
        f"over {len(threads)} threads"
    )
    click.echo(
        f"demo: {result.forms} filings on service forms, registered by the domain systems: "
        f"{result.registered_by_domain_systems}; the registers' acknowledgements filed "
        f"as receipts: {result.register_acks_filed}"
    )
    click.echo(
        f"demo: {result.invoices_sent} purchase invoices (KSeF FA(3)) handed over, "
        f"{result.invoices_booked} booked by the offices' finance systems (SOAP)"
    )
    click.echo(
        f"demo: {result.decisions_sent} decisions sent back through ePUAP with UPD: "
        f"{result.decisions_delivered} delivered, {result.upds_filed} UPDs verified and filed"
    )
    if as_json:
        figures = {key: getattr(result, key) for key in result.__dataclass_fields__}
        figures["exactly_once"] = result.exactly_once
        figures["succeeded"] = result.succeeded
        click.echo(json.dumps(figures))
