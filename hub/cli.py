"""The ``hub`` command: run the hub's jobs, migrate its store, and whatever plugins add."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from hub.errors import HubError
from hub.logging import configure_logging
from hub.settings import Settings

if TYPE_CHECKING:
    from hub.identity import ClientRegistry
    from hub.store.pages import Cursor, Page
    from hub.store.repository import Store

COMMAND_GROUP = "hub.commands"
# Dead deliveries replayed per read when replaying a whole endpoint.
REPLAY_PAGE = 200


class HubGroup(click.Group):
    """A click group that also offers the commands installed under ``hub.commands``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin command names, sorted."""
        plugins = [entry_point.name for entry_point in entry_points(group=COMMAND_GROUP)]
        return sorted({*super().list_commands(ctx), *plugins})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, or the plugin registered under that name."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for entry_point in entry_points(group=COMMAND_GROUP):
            if entry_point.name == cmd_name:
                loaded: click.Command = entry_point.load()
                return loaded
        return None


@click.group(cls=HubGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings TOML file (default: $HUB_CONFIG, else built-in defaults).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """The integration hub for regional e-government: ePUAP and legacy systems, over RabbitMQ."""
    settings = Settings.load(config_path)
    configure_logging(settings)
    ctx.obj = settings


@cli.group()
def db() -> None:
    """Manage the hub's database."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Create or migrate the store to the newest schema (SQLite or PostgreSQL)."""
    from hub.store.migrate import upgrade_database

    upgrade_database(settings, revision)
    click.echo(f"database at {_safe_url(settings.database_url)} is at revision {revision}")


@cli.group()
def keys() -> None:
    """Manage the keystore of office identities."""


@keys.command("init")
@click.option(
    "--offices",
    default="",
    help="Comma-separated office ids (default: every office of the region).",
)
@click.pass_obj
def keys_init(settings: Settings, offices: str) -> None:
    """Create a test CA and an identity per office (plus the hub and the platforms' simulators).

    The CA's private key goes to ``<var_dir>/ca`` and the simulated platforms' identities
    (``epuap``, ``edoreczenia``) to ``<var_dir>/platforms``, both out of the keystore the
    hub reads, their certificates pinned in the trust store's ``platforms/``; office keys are
    encrypted with ``keystore_password`` when it is set.
    """
    from hub.region import load_region
    from hub.signing.keystore import init_test_pki

    office_ids = [office for office in offices.split(",") if office] or list(
        load_region(settings.region_path).offices
    )
    written = init_test_pki(
        settings.keys,
        settings.trust,
        ["hub", "epuap", "edoreczenia", *office_ids],
        ca_dir=settings.var_dir / "ca",
        platforms_dir=settings.var_dir / "platforms",
        password=settings.keystore_password,
    )
    click.echo(
        f"keystore {settings.keys}: {len(written)} file(s) written, "
        f"{len(office_ids) + 1} identities; the CA's key kept in {settings.var_dir / 'ca'}, "
        f"the ePUAP and e-Doręczenia simulators' in {settings.var_dir / 'platforms'}; "
        f"trust lists in {settings.trust}"
    )


@cli.command()
@click.option("--office", required=True, help="The office whose key signs (its id, e.g. 146501_1).")
@click.argument("document", type=click.File("rb"))
@click.pass_obj
def sign(settings: Settings, office: str, document: BinaryIO) -> None:
    """Add the office's XAdES-BES signature to DOCUMENT; write the result to stdout."""
    from hub.signing.keystore import Keystore
    from hub.signing.xades import sign_document

    identity = Keystore(settings.keys, settings.keystore_password).identity(office)
    sys.stdout.buffer.write(sign_document(document.read(), identity))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the verification's details as JSON.")
@click.option(
    "--signer",
    type=click.Choice(["any", "citizen", "office", "platform"]),
    default="any",
    show_default=True,
    help="Whose trust list to check against (any: every list of the trust store).",
)
@click.argument("document", type=click.File("rb"))
@click.pass_obj
def verify(settings: Settings, as_json: bool, signer: str, document: BinaryIO) -> None:
    """Verify DOCUMENT's signatures against the trust store; exit 1 unless one covers it whole.

    Prints one line (valid: who signed and when; invalid: why). ``--json`` prints the
    verdict with every signature the document carries, each with its own result.
    """
    import json

    from hub.errors import RejectedInput
    from hub.signing.steps import signature_records
    from hub.signing.trust import TrustLists
    from hub.signing.xades import verify_document, verify_signatures

    body = document.read()
    lists = TrustLists.on_first_use(settings.trust)
    trust = lists.chosen(signer)
    try:
        records = signature_records(verify_signatures(body, trust), lists.profil_zaufany)
        verified = verify_document(body, trust)
    except RejectedInput as exc:
        details = {"valid": False, "reason": exc.reason, "signatures": locals().get("records", [])}
        click.echo(json.dumps(details) if as_json else f"invalid: {exc.reason}")
        sys.exit(1)
    signed_at = verified.signed_at.isoformat() if verified.signed_at else None
    details = {
        "valid": True,
        "form": verified.form,
        "signer": verified.signer,
        "signed_at": signed_at,
        "certificate_serial": str(verified.certificate_serial),
        "signatures": records,
    }
    click.echo(
        json.dumps(details) if as_json else f"valid: signed by {verified.signer} at {signed_at}"
    )


@cli.group()
def audit() -> None:
    """The hash-chained audit log of every state change."""


@audit.command("verify")
@click.pass_obj
def audit_verify(settings: Settings) -> None:
    """Walk the chain and its signed checkpoints; exit 1 naming the first broken row."""
    from hub.audit import AuditChain
    from hub.signing.trust import OFFICES, TrustStore
    from hub.store.repository import Store

    # Checkpoints are signed with the hub's own key: the offices' list vouches for it.
    offices = settings.trust / OFFICES
    trust = TrustStore.from_directory(offices) if offices.is_dir() else None
    report = AuditChain(Store.from_url(settings.database_url)).verify(trust)
    summary = (
        f"{report.rows_checked} row(s) chained, {report.pending} waiting to be chained, "
        f"{report.checkpoints_checked} signed checkpoint(s) checked"
    )
    if report.intact:
        click.echo(f"audit chain intact: {summary}")
        return
    where = f"row {report.first_broken_id}: " if report.first_broken_id is not None else ""
    click.echo(f"audit chain BROKEN at {where}{report.reason} ({summary})", err=True)
    sys.exit(1)


@audit.command("link")
@click.pass_obj
def audit_link(settings: Settings) -> None:
    """Chain what is waiting now (the relay does this continuously)."""
    from hub.audit import AuditChain
    from hub.store.repository import Store

    chain = AuditChain(Store.from_url(settings.database_url))
    linked = total = chain.link_pending()
    while linked:
        linked = chain.link_pending()
        total += linked
    click.echo(f"{total} row(s) chained")


@cli.group()
def dead() -> None:
    """Deliveries parked for an operator: what died, and why."""


def _page_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--limit`` and ``--after``: one keyset page of a long list."""
    command = click.option(
        "--after",
        default=None,
        metavar="CURSOR",
        help="Start after this row (the cursor the page before printed last).",
    )(command)
    return click.option(
        "--limit", type=click.IntRange(min=1, max=500), default=100, show_default=True
    )(command)


def _parse_cursor(text: str | None) -> Cursor | None:
    from hub.store.pages import BadCursor, Cursor

    try:
        return Cursor.parse(text) if text else None
    except BadCursor as exc:
        raise click.BadParameter(exc.reason, param_hint="--after") from exc


def _echo_next(page: Page[Any], *, err: bool = False) -> None:
    if page.next is not None:
        click.echo(f"next page: --after {page.next}", err=err)


@dead.command("list")
@click.option("--endpoint", default=None, help="Only this endpoint (e.g. eod@146501_1).")
@click.option("--since", type=click.DateTime(), default=None, help="Only those dead since (UTC).")
@_page_options
@click.pass_obj
def dead_list(
    settings: Settings, endpoint: str | None, since: datetime | None, limit: int, after: str | None
) -> None:
    """List one page of dead deliveries, newest first; the last line gives the next page."""
    from hub.store.pages import page_of
    from hub.store.queries import dead_cursor
    from hub.store.repository import Store

    since_utc = since.replace(tzinfo=UTC) if since is not None else None
    rows = Store.from_url(settings.database_url).dead_deliveries(
        endpoint, since_utc, after=_parse_cursor(after), limit=limit + 1
    )
    page = page_of(rows, limit, dead_cursor)
    for item in page.items:
        click.echo(
            f"{item.delivery_id}  {item.endpoint}  {item.died_at:%Y-%m-%d %H:%M:%S}  "
            f"{item.attempts} attempt(s)  {item.last_error or ''}"
        )
    click.echo(f"{len(page.items)} dead deliver{'y' if len(page.items) == 1 else 'ies'}")
    _echo_next(page)


@cli.group()
def quarantine() -> None:
    """Inbound requests refused before they became messages, kept with their reasons."""


@quarantine.command("list")
@click.option("--channel", default=None, help="Only this channel (e.g. epuap-esp).")
@click.option("--since", type=click.DateTime(), default=None, help="Only those since (UTC).")
@_page_options
@click.pass_obj
def quarantine_list(
    settings: Settings, channel: str | None, since: datetime | None, limit: int, after: str | None
) -> None:
    """List one page of refused inputs, newest first: when, channel, code, size, reason."""
    from hub.store.pages import page_of
    from hub.store.quarantine import quarantine_cursor, quarantined
    from hub.store.repository import Store

    since_utc = since.replace(tzinfo=UTC) if since is not None else None
    rows = quarantined(
        Store.from_url(settings.database_url),
        channel,
        since_utc,
        limit + 1,
        after=_parse_cursor(after),
    )
    page = page_of(rows, limit, quarantine_cursor)
    for item in page.items:
        click.echo(
            f"{item.id}  {item.received_at:%Y-%m-%d %H:%M:%S}  {item.channel}  {item.code}  "
            f"{item.size} B  {item.remote_address or '-'}  {item.reason}"
        )
    click.echo(f"{len(page.items)} refused input(s)")
    _echo_next(page)


@quarantine.command("prune")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    metavar="AGE",
    help="Remove what is older than AGE: days, hours or minutes, e.g. 30d, 12h "
    "(default: settings quarantine_retention_days).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.pass_obj
def quarantine_prune(settings: Settings, older_than: str | None, batch_size: int) -> None:
    """Remove refused inputs older than the retention, in batches, each audited."""
    from hub.store.quarantine import prune_quarantine
    from hub.store.repository import Store

    age = _age(older_than) if older_than else timedelta(days=settings.quarantine_retention_days)
    received_before = datetime.now(UTC) - age
    removed = prune_quarantine(
        Store.from_url(settings.database_url),
        received_before,
        batch_size,
        on_batch=lambda count: click.echo(f"removed {count} refused input(s)"),
    )
    cutoff = f"{received_before:%Y-%m-%d %H:%M:%S}"
    click.echo(f"{removed} refused input(s) received before {cutoff} UTC removed")


AGE_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _age(text: str) -> timedelta:
    amount, unit = text[:-1], text[-1:]
    if unit not in AGE_UNITS or not amount.isdigit() or int(amount) < 1:
        raise click.BadParameter(
            f"{text!r} is not an age such as 90d, 12h or 30m", param_hint="--older-than"
        )
    return timedelta(**{AGE_UNITS[unit]: int(amount)})


@dead.command("show")
@click.argument("delivery_id")
@click.pass_obj
def dead_show(settings: Settings, delivery_id: str) -> None:
    """Show one dead delivery's message, attempts and errors as JSON."""
    import json

    from hub.store.queries import dead_delivery, message_trace
    from hub.store.repository import Store

    store = Store.from_url(settings.database_url)
    parked = dead_delivery(store, delivery_id)
    if parked is None:
        raise click.ClickException(f"no dead delivery {delivery_id}")
    click.echo(json.dumps(message_trace(store, parked.message_id), indent=2))


@cli.command()
@click.argument("delivery_ids", nargs=-1)
@click.option("--endpoint", default=None, help="With --all: every dead delivery of this endpoint.")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead delivery of --endpoint.")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--actor", default=lambda: os.environ.get("USER", "operator"), help="Who replays.")
@click.pass_obj
def replay(
    settings: Settings,
    *,
    delivery_ids: tuple[str, ...],
    endpoint: str | None,
    replay_all: bool,
    reason: str,
    actor: str,
) -> None:
    """Send dead deliveries again under their own idempotency keys, once each."""
    from hub.store.repository import Store

    store = Store.from_url(settings.database_url)
    if replay_all and endpoint is None:
        raise click.UsageError("--all needs --endpoint")
    targets = _dead_of(store, endpoint) if replay_all and endpoint else iter(delivery_ids)
    replayed = 0
    for delivery_id in targets:
        if store.replay_delivery(delivery_id, actor, reason) is None:
            click.echo(f"{delivery_id}: not dead (already replayed or delivered); left as it is")
        else:
            replayed += 1
    click.echo(f"{replayed} deliver{'y' if replayed == 1 else 'ies'} replayed")


def _dead_of(store: Store, endpoint: str) -> Iterator[str]:
    """Every dead delivery of ``endpoint``, a keyset page at a time (never one list of all).

    Each page starts after the last row of the one before, so the rows this replay takes
    out of ``dead`` do not shift the pages; a delivery that dies again meanwhile is newer
    than the cursor and waits for the next replay.
    """
    from hub.store.queries import dead_cursor

    cursor: Cursor | None = None
    while True:
        page = store.dead_deliveries(endpoint, after=cursor, limit=REPLAY_PAGE)
        yield from (item.delivery_id for item in page)
        if len(page) < REPLAY_PAGE:
            return
        cursor = dead_cursor(page[-1])


@cli.group()
def endpoint() -> None:
    """Endpoints' circuits: list them, pause one for maintenance, resume it."""


@endpoint.command("list")
@click.pass_obj
def endpoint_list(settings: Settings) -> None:
    """Every endpoint whose circuit is not plain closed, or ever was."""
    from hub.breaker import CircuitBreakers
    from hub.store.repository import Store

    for row in CircuitBreakers(Store.from_url(settings.database_url), settings).states():
        click.echo(
            f"{row.endpoint}  {row.state}  failures={row.consecutive_failures}  "
            f"{row.reason or ''}  {row.changed_by or ''}"
        )


@endpoint.command("pause")
@click.argument("name")
@click.option("--reason", required=True, help="Why (shown to other operators).")
@click.option("--actor", default=lambda: os.environ.get("USER", "operator"), help="Who pauses.")
@click.pass_obj
def endpoint_pause(settings: Settings, name: str, reason: str, actor: str) -> None:
    """Stop attempting deliveries to NAME; they wait, keeping their attempts."""
    from hub.breaker import CircuitBreakers
    from hub.store.repository import Store

    CircuitBreakers(Store.from_url(settings.database_url), settings).pause(name, actor, reason)
    click.echo(f"{name} paused")


@endpoint.command("resume")
@click.argument("name")
@click.option("--actor", default=lambda: os.environ.get("USER", "operator"), help="Who resumes.")
@click.pass_obj
def endpoint_resume(settings: Settings, name: str, actor: str) -> None:
    """Attempt deliveries to NAME again."""
    from hub.breaker import CircuitBreakers
    from hub.store.repository import Store

    CircuitBreakers(Store.from_url(settings.database_url), settings).resume(name, actor)
    click.echo(f"{name} resumed")


@cli.group()
def broker() -> None:
    """The broker's queues: move a hub of an earlier version onto today's topology."""


@broker.command("migrate-queues")
@click.option("--dry-run", is_flag=True, help="Only count the old queues and their messages.")
@click.option(
    "--endpoint",
    "extra_endpoints",
    multiple=True,
    help="Also look for this endpoint's old queue (one the region no longer lists); repeatable.",
)
@click.pass_obj
def broker_migrate_queues(
    settings: Settings, dry_run: bool, extra_endpoints: tuple[str, ...]
) -> None:
    """Move what waits in an earlier version's per-endpoint queues onto the shards.

    Binds each endpoint's old routing key (deliver.<endpoint>) to its shard, for what the
    delay tiers still hold (these bindings stay), moves the messages of every old queue
    <prefix>.deliver.<endpoint> with publisher confirms and deletes the emptied queues.
    Safe to interrupt and run again. See docs/broker.md.
    """
    from hub.broker.connection import close_quietly, connect
    from hub.broker.migrate import MigrationProgress, QueueMigration
    from hub.region import load_region

    endpoints = [*load_region(settings.region_path).endpoints, *extra_endpoints]

    def progress(done: MigrationProgress) -> None:
        click.echo(
            f"queues {done.queues_done}/{done.queues_total} done, "
            f"{done.messages_moved} message(s) moved ({done.queue})",
            err=True,
        )

    connection = connect(settings.amqp_url)
    try:
        migration = QueueMigration(
            connection, settings.amqp_url, settings.topology, on_progress=progress
        )
        if dry_run:
            found = migration.dry_run(endpoints)
            click.echo(
                f"would move {found.messages_found} message(s) from {found.queues_found} old "
                f"queue(s) of {found.endpoints} endpoint(s)"
            )
            return
        summary = migration.run(endpoints)
    finally:
        close_quietly(connection)
    click.echo(
        f"moved {summary.messages_moved} message(s) from {summary.queues_found} old queue(s), "
        f"deleted {summary.queues_deleted}, bound {summary.keys_bound} old routing key(s) "
        f"of {summary.endpoints} endpoint(s) to their shards"
    )
    if summary.queues_left:
        click.echo(
            f"left in place (still consumed, or refilled): {', '.join(summary.queues_left)}; "
            "stop the old workers and run again",
            err=True,
        )
        sys.exit(1)


@cli.group()
def receipts() -> None:
    """Receipts the hub holds or waits for."""


@receipts.command("late")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_page_options
@click.pass_obj
def receipts_late(settings: Settings, as_json: bool, limit: int, after: str | None) -> None:
    """List one page of deliveries whose awaited receipt (e.g. a UPD) is past its deadline."""
    import dataclasses
    import json

    from hub.store.pages import page_of
    from hub.store.queries import late_cursor
    from hub.store.repository import Store

    rows = Store.from_url(settings.database_url).late_receipts(
        after=_parse_cursor(after), limit=limit + 1
    )
    page = page_of(rows, limit, late_cursor)
    late = page.items
    for item in late:
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(item), default=str))
        else:
            click.echo(
                f"{item.awaited} late since {item.due_at:%Y-%m-%d %H:%M} UTC: message "
                f"{item.message_id} via {item.endpoint} (platform id {item.external_reference})"
            )
    if not as_json:
        click.echo(f"{len(late)} receipt(s) late")
    # With --json the lines on standard output are all receipts; the cursor goes aside.
    _echo_next(page, err=as_json)


@cli.command()
@click.option(
    "--role", type=click.Choice(["all", "route", "deliver"]), default="all", show_default=True
)
@click.pass_obj
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Handler threads in this process (default: settings worker_threads).",
)
def worker(settings: Settings, role: str, threads: int | None) -> None:
    """Consume routing and/or delivery queues until SIGTERM."""
    from hub.runtime import run_worker
    from hub.store.repository import Store

    roles = {"route", "deliver"} if role == "all" else {role}
    store = Store.from_url(settings.database_url)
    run_worker(settings, store, roles, threads or settings.worker_threads)


@cli.command()
@click.pass_obj
def relay(settings: Settings) -> None:
    """Publish the transactional outbox to RabbitMQ until SIGTERM (one per database)."""
    from hub.runtime import build_relay, stop_on_signals
    from hub.store.repository import Store

    outbox_relay = build_relay(settings, Store.from_url(settings.database_url))
    stop_on_signals(outbox_relay.stop_requested)
    outbox_relay.run()


@cli.command()
@click.option("--once", is_flag=True, help="Poll every channel once and exit.")
@click.pass_obj
def poll(settings: Settings, once: bool) -> None:
    """Pull national inboxes (ePUAP) on a schedule until SIGTERM (one per database)."""
    from hub.inbound import accept_into
    from hub.runtime import build_poller, stop_on_signals
    from hub.store.repository import Store

    store = Store.from_url(settings.database_url)
    poller = build_poller(settings, store)
    if once:
        click.echo(f"fetched {poller.poll_round(accept_into(store))} document(s)")
        return
    stop_on_signals(poller.stop_requested)
    poller.run()


@cli.command()
@click.option("--host", default=None, help="Bind address (default: settings http_host).")
@click.option("--port", type=int, default=None, help="Port (default: settings http_port).")
@click.option("--workers", type=int, default=2, show_default=True)
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API and monitoring under gunicorn.

    HTTPS with ``tls_certificate`` and ``tls_private_key``; client certificates (mTLS)
    with ``tls_client_ca``, required with ``tls_require_client_certificate``.
    """
    from hub.serving import serve as run_server
    from hub.tls import tls_setup
    from hub.web import create_app

    tls = tls_setup(settings)
    run_server(
        create_app(settings),
        host or settings.http_host,
        port or settings.http_port,
        workers,
        tls=tls,
    )


@cli.group()
def client() -> None:
    """The clients of the hub's inbound APIs: every caller is one, with its own token."""


@client.command("add")
@click.argument("name")
@click.option(
    "--office",
    "acts_for",
    required=True,
    help="Whom the client acts for: an office id of the catalogue, 'portal' or 'region'.",
)
@click.option(
    "--source", "sources", multiple=True, help="A system it speaks as (eod, podatki, ...)."
)
@click.option(
    "--api",
    "apis",
    multiple=True,
    type=click.Choice(["intake", "cases", "edoreczenia-webhook", "monitoring"]),
    help="An API it may call (default: an office the intake and cases, the portal cases).",
)
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "admin"]),
    default=None,
    help="Its role on the monitoring API.",
)
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A PEM client certificate that identifies it over mTLS.",
)
@click.option(
    "--adopt-token",
    is_flag=True,
    help="Read the token the system already holds from standard input instead of making one.",
)
@click.pass_obj
def client_add(
    settings: Settings,
    *,
    name: str,
    acts_for: str,
    sources: tuple[str, ...],
    apis: tuple[str, ...],
    role: str | None,
    certificate: Path | None,
    adopt_token: bool,
) -> None:
    """Register client NAME; its token is the last line printed (shown once, kept hashed).

    With --adopt-token the system keeps the token it has (moving from a shared token):
    it is read from standard input, and only its digest is kept.
    """
    from hub.identity import PORTAL, REGION, certificate_fingerprint
    from hub.region import load_region

    if (
        acts_for not in (PORTAL, REGION)
        and acts_for not in load_region(settings.region_path).offices
    ):
        raise click.BadParameter(
            f"{acts_for!r} is not an office of the catalogue", param_hint="--office"
        )
    adopted = sys.stdin.readline().strip() if adopt_token else None
    if adopt_token and not adopted:
        raise click.UsageError("--adopt-token reads the token from standard input; none came")
    fingerprint = certificate_fingerprint(certificate.read_bytes()) if certificate else None
    token = _registry(settings).add(
        name,
        acts_for,
        sources=sources,
        apis=apis or None,
        role=role,
        certificate_sha256=fingerprint,
        token=adopted,
    )
    click.echo(f"client {name} added for {acts_for}; its token (shown once):", err=True)
    click.echo(token)


@client.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Revoked clients too.")
@click.pass_obj
def client_list(settings: Settings, include_revoked: bool) -> None:
    """List the clients: whom each acts for, its sources and APIs."""
    records = _registry(settings).records(include_revoked=include_revoked)
    for record in records:
        found = record.client
        state = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
        if record.previous_valid_until and not record.revoked_at:
            state += f", old token until {record.previous_valid_until:%Y-%m-%d %H:%M}"
        click.echo(
            f"{found.name}\t{found.acts_for}\tsources={','.join(sorted(found.sources)) or '-'}"
            f"\tapis={','.join(sorted(found.apis))}\trole={found.role or '-'}"
            f"\tmtls={'yes' if record.has_certificate else 'no'}\t{state}"
        )
    click.echo(f"{len(records)} client(s)", err=True)


@client.command("revoke")
@click.argument("name")
@click.pass_obj
def client_revoke(settings: Settings, name: str) -> None:
    """End NAME's access at once: its tokens stop working."""
    _registry(settings).revoke(name)
    click.echo(f"client {name} revoked")


@client.command("rotate")
@click.argument("name")
@click.option(
    "--overlap",
    default="24h",
    show_default=True,
    help="How long the old token stays valid (e.g. 0, 30m, 24h, 7d).",
)
@click.pass_obj
def client_rotate(settings: Settings, name: str, overlap: str) -> None:
    """Give NAME a new token, the last line printed; the old one works for --overlap."""
    token = _registry(settings).rotate(name, _duration(overlap))
    click.echo(
        f"client {name} has a new token (shown once); the old one works for {overlap}:", err=True
    )
    click.echo(token)


def _registry(settings: Settings) -> ClientRegistry:
    from hub.identity import ClientRegistry
    from hub.store.repository import Store

    return ClientRegistry(Store.from_url(settings.database_url))


DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    number, unit = (text[:-1], text[-1]) if text[-1:] in DURATION_UNITS_S else (text, "s")
    try:
        return timedelta(seconds=float(number) * DURATION_UNITS_S[unit])
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a duration like 30m, 24h or 7d") from exc


def _safe_url(url: str) -> str:
    # Never print a password from the database URL.
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{tail}"


def main() -> None:
    """Entry point: run the CLI, turning the hub's own errors into one clear line."""
    try:
        cli(standalone_mode=True)
    except HubError as exc:
        click.echo(f"hub: {exc.reason}", err=True)
        sys.exit(2)
