"""e-Doręczenia calls the hub back: new messages and new evidences, as they happen.

After ``PUT /{eDeliveryAddress}/message_subscriptions`` (:func:`subscribe_offices`, or
``hub edoreczenia-subscribe --callback-base-url URL``), the service posts a
``MessageStatement`` to ``POST /edoreczenia/notifications/<office_id>?token=<token>``:

- ``{"eDeliveryAddress", "notificationType": "NewMessage", "notification": [{"id":
  messageId, "threadId"}]}``: the message is read and handed to ``accept`` by the very
  code the polling inbound uses (same external id ``edoreczenia:{address}:{messageId}``,
  same label afterwards), so a message seen by both is stored once.
- ``{..., "notificationType": "NewEvidence", "notification": [{"id": evidenceId, "type":
  "E.1"}]}``: the notification names the evidence, not its message, so the evidence is
  read by id for its ``messageId``; the hub's message is the one whose delivery the
  service registered under that id, and every evidence of it is kept as a receipt under
  the kind and id the outbound adapter uses, so none is kept twice. Each is checked
  against the provider's pinned certificate first (:mod:`adapters.edoreczenia.evidences`):
  one whose signature fails is quarantined by the store, not kept.

The contract lets a subscription name only URLs, so the caller proves itself with the
token of a client of the hub's registry allowed the ``edoreczenia-webhook`` API, in the
URL's query (``token``); ``hub edoreczenia-subscribe`` makes that client (or gives it a
new token, the old one valid for a day while subscriptions are replaced) and puts the
token in every callback URL. The channel turns the receiver on with ``webhook = true``;
without it no route is registered. Refusals are RFC 7807 problem documents.
The work is done before answering, bounded by the client's timeouts (a few calls on one
message); polling stays the safety net for whatever a failed callback leaves behind.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import click
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from adapters.edoreczenia.client import EDoreczeniaClient
from adapters.edoreczenia.evidences import pinned_provider_trust, verified_receipt
from adapters.edoreczenia.inbound import channel_client, processed_label, take_message
from hub.errors import ClientRegistryError, ConfigurationError, HubError
from hub.identity import EDORECZENIA_WEBHOOK, REGION, Client, ClientRegistry
from hub.inbound import accept_into
from hub.logging import get_logger
from hub.region import InboundConfig, Office, Region, load_region
from hub.reload import RegionSource
from hub.settings import Settings
from hub.signing.trust import TrustStore
from hub.store.repository import Store
from hub.web import REGION_EXTENSION, admit, problem, refuse

log = get_logger(__name__)

CHANNEL_KIND = "edoreczenia-poll"
NOTIFICATIONS_PATH = "/edoreczenia/notifications/<office_id>"
CHANNEL = "edoreczenia-webhook"
AUTH_QUERY_PARAMETER = "token"
NEW_MESSAGE, NEW_EVIDENCE = "NewMessage", "NewEvidence"
EXTENSION_KEY = "edoreczenia_webhook"
# A MessageStatement names a few ids; anything much bigger is not one.
MAX_NOTIFICATION_BYTES = 64 * 1024
# The contract declares 200 for callback answers; 202 says "taken", which the hub's
# other intake answers too. Any 2xx counts as delivered for the simulator's notifier.
ACKNOWLEDGED = 202
WEBHOOK_CLIENT = "edoreczenia"
# Mailboxes are resubscribed one by one: the token they were given stays valid meanwhile.
RESUBSCRIBE_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class WebhookService:
    """What the receiver needs: the catalogue, the store, one UA API client, whom to believe."""

    # The process's one reloading region: an office added to the file is served here too.
    regions: RegionSource
    store: Store
    client: EDoreczeniaClient
    processed_label: str
    #: The provider's pinned certificate: only evidences it signed are kept.
    provider_trust: TrustStore
    # record_receipt checks for the evidence id, then inserts: two callbacks about one
    # message in one process must not both pass the check. (The receipts table has no
    # unique key that would settle it across processes.)
    receipts_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, slots=True)
class Statement:
    """A ``MessageStatement`` as posted: whose mailbox, what happened, the ids concerned."""

    address: str
    notification_type: str
    object_ids: tuple[str, ...]


class MalformedStatement(ValueError):
    """The body is not a ``MessageStatement``."""


blueprint = Blueprint("edoreczenia_webhook", __name__)


def register(app: Flask) -> None:
    """Plug the webhook receiver into the hub's HTTP app (entry point ``hub.web``).

    Raises:
        ConfigurationError: the channel sets ``webhook`` but lacks a client option, or
            the provider's certificate is missing.
    """
    settings: Settings = app.config["HUB_SETTINGS"]
    regions: RegionSource = app.extensions[REGION_EXTENSION]
    region = regions.current()
    channel = webhook_channel(region)
    if channel is None:
        return  # no e-Doręczenia channel, or it is polled only
    app.extensions[EXTENSION_KEY] = WebhookService(
        regions=regions,
        store=app.config["HUB_STORE"],
        client=channel_client(channel, settings.delivery_timeout_s),
        processed_label=processed_label(channel.options),
        provider_trust=pinned_provider_trust(
            settings.trust, channel.options, f"inbound channel {channel.name}"
        ),
    )
    app.register_blueprint(blueprint)


def webhook_channel(region: Region) -> InboundConfig | None:
    """The region's ``edoreczenia-poll`` channel if it sets ``webhook = true``, else None.

    Raises:
        ConfigurationError: the channel still names the retired ``webhook_secret``.
    """
    channel = next((item for item in region.inbound if item.kind == CHANNEL_KIND), None)
    if channel is None:
        return None
    if "webhook_secret" in channel.options:
        raise ConfigurationError(
            f"inbound channel {channel.name}: webhook_secret is no longer read; set "
            "webhook = true and run hub edoreczenia-subscribe, which makes the webhook's client"
        )
    if channel.options.get("webhook") is not True:
        log.info("edoreczenia_webhook_off", channel=channel.name, reason="webhook is not true")
        return None
    return channel


@blueprint.post(NOTIFICATIONS_PATH)
def notification(office_id: str) -> tuple[Response, int]:
    """Take one ``MessageStatement`` for ``office_id``'s mailbox; answer once it is handled."""
    service: WebhookService = current_app.extensions[EXTENSION_KEY]
    caller = admit(
        CHANNEL,
        EDORECZENIA_WEBHOOK,
        token=request.args.get(AUTH_QUERY_PARAMETER, ""),
        credential=f"'{AUTH_QUERY_PARAMETER}'",
    )
    if not isinstance(caller, Client):
        return caller
    office = service.regions.current().offices.get(office_id)
    if office is None or not office.edoreczenia_address:
        detail = f"office {office_id!r} has no e-Doręczenia mailbox"
        return refuse(CHANNEL, 404, "unknown-office", detail)
    try:
        statement = _statement_for(office)
        new = handle(service, office, statement)
    except MalformedStatement as exc:
        return refuse(CHANNEL, 400, "malformed-notification", str(exc))
    except HubError as exc:
        # Unreachable service or store: a retried callback, or the next poll, takes it.
        log.warning("edoreczenia_notification_failed", office=office.id, reason=exc.reason)
        return problem(503, "not-handled-now", exc.reason)
    log.info(
        "edoreczenia_notification_handled",
        office=office.id,
        notification_type=statement.notification_type,
        new=new,
    )
    return jsonify({"status": "OK"}), ACKNOWLEDGED


def handle(service: WebhookService, office: Office, statement: Statement) -> int:
    """Act on a statement for ``office``; return how many messages or receipts were new.

    Raises:
        HubError: the service or the store failed (the first failure stops the rest).
    """
    if statement.notification_type == NEW_MESSAGE:
        outcomes = [take_notified_message(service, office, item) for item in statement.object_ids]
        return outcomes.count("accepted") + outcomes.count("rejected")
    if statement.notification_type == NEW_EVIDENCE:
        return sum(record_notified_evidence(service, office, item) for item in statement.object_ids)
    log.info("edoreczenia_notification_ignored", notification_type=statement.notification_type)
    return 0


def take_notified_message(service: WebhookService, office: Office, message_id: str) -> str:
    """Store a new message as polling would; return ``accept``'s outcome.

    Raises:
        DeliveryError: the message could not be read. StoreUnavailable: not stored.
    """
    accept = accept_into(service.store)
    return take_message(service.client, office, message_id, accept, service.processed_label)


def record_notified_evidence(service: WebhookService, office: Office, evidence_id: str) -> int:
    """Keep every evidence of the sent message ``evidence_id`` belongs to; return how many new.

    Evidences of messages the hub does not know (not sent by it, or whose delivery is
    not recorded yet: A.1 and D.1 arrive while the sending call is still under way, and
    the outbound adapter keeps those itself) are skipped.

    Raises:
        DeliveryError: the evidences could not be read. StoreUnavailable: not stored.
    """
    address = office.edoreczenia_address
    platform_message_id = service.client.evidence_entry(address, evidence_id).message_id
    message_id = service.store.message_id_by_delivery_reference(platform_message_id)
    if message_id is None:
        log.info("edoreczenia_evidence_unmatched", evidence_id=evidence_id, office=office.id)
        return 0
    receipts = [
        verified_receipt(item, service.provider_trust)
        for item in service.client.evidences(address, platform_message_id)
    ]
    with service.receipts_lock:
        kept = sum(service.store.record_receipt(message_id, receipt) for receipt in receipts)
    log.info("edoreczenia_evidences_recorded", envelope_id=message_id, new=kept)
    return kept


def parse_statement(body: Any) -> Statement:
    """Read a ``MessageStatement`` (``eDeliveryAddress``, ``notificationType``, ``notification``).

    Raises:
        MalformedStatement: a required field is missing or of the wrong type.
    """
    if not isinstance(body, dict):
        raise MalformedStatement("the body is not a JSON object")
    address, notification_type = body.get("eDeliveryAddress"), body.get("notificationType")
    if not isinstance(address, str) or not isinstance(notification_type, str):
        raise MalformedStatement("eDeliveryAddress and notificationType are required strings")
    items = body.get("notification") or []
    if not isinstance(items, list):
        raise MalformedStatement("notification is not a list")
    return Statement(address, notification_type, _object_ids(items))


def _object_ids(items: Sequence[Any]) -> tuple[str, ...]:
    ids = [item.get("id") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(item, str) and item for item in ids):
        raise MalformedStatement("every notification needs an 'id'")
    return tuple(str(item) for item in ids)


def _statement_for(office: Office) -> Statement:
    if (request.content_length or 0) > MAX_NOTIFICATION_BYTES:
        raise MalformedStatement(f"the body is larger than {MAX_NOTIFICATION_BYTES} bytes")
    statement = parse_statement(request.get_json(silent=True))
    if statement.address != office.edoreczenia_address:
        # The token is the platform's, not the office's: the URL and the body must agree.
        raise MalformedStatement(
            f"the notification is for {statement.address}, not office {office.id}'s mailbox"
        )
    return statement


def callback_url(base_url: str, office_id: str, token: str) -> str:
    """The URL e-Doręczenia calls for ``office_id``, carrying the token in its query."""
    path = NOTIFICATIONS_PATH.replace("<office_id>", quote(office_id, safe=""))
    return f"{base_url.rstrip('/')}{path}?{urlencode({AUTH_QUERY_PARAMETER: token})}"


def webhook_token(registry: ClientRegistry, name: str = WEBHOOK_CLIENT) -> str:
    """A fresh token of the webhook's client ``name``, made if it does not exist yet.

    The registry keeps only tokens' digests, so subscribing mints a new one; an earlier
    token stays valid for ``RESUBSCRIBE_OVERLAP``, while mailboxes are resubscribed.
    """
    try:
        return registry.rotate(name, RESUBSCRIBE_OVERLAP)
    except ClientRegistryError:
        return registry.add(name, REGION, sources=["edoreczenia"], apis=[EDORECZENIA_WEBHOOK])


def subscribe_offices(
    channel: InboundConfig,
    region: Region,
    callback_base_url: str,
    token: str,
    *,
    timeout_s: float = 10.0,
) -> int:
    """Subscribe every office's mailbox to the hub's callbacks, for messages and evidences.

    A subscription replaces the mailbox's previous one, so running this again (after a
    failure, or with a new URL) is safe.

    Returns:
        How many mailboxes were subscribed.

    Raises:
        ConfigurationError: the channel lacks a client option.
        TransientDeliveryError, PermanentDeliveryError: a subscription failed; the
            mailboxes before it are subscribed.
    """
    offices = [office for office in region.offices.values() if office.edoreczenia_address]
    client = channel_client(channel, timeout_s)
    try:
        for office in offices:
            url = callback_url(callback_base_url, office.id, token)
            subscription_id = client.subscribe(
                office.edoreczenia_address, url, evidence_callback_url=url
            )
            # Never the URL: it carries the token.
            log.info("edoreczenia_subscribed", office=office.id, subscription_id=subscription_id)
    finally:
        client.close()
    return len(offices)


@click.command("edoreczenia-subscribe")
@click.option(
    "--callback-base-url",
    required=True,
    help="The hub's URL as e-Doręczenia reaches it, e.g. https://hub.example.gov.pl",
)
@click.option(
    "--client",
    "client_name",
    default=WEBHOOK_CLIENT,
    show_default=True,
    help="The registry's client e-Doręczenia calls as (made if missing, else given a new token).",
)
@click.pass_obj
def edoreczenia_subscribe(settings: Settings, callback_base_url: str, client_name: str) -> None:
    """Subscribe the offices' e-Doręczenia mailboxes to the hub's webhook."""
    region = load_region(settings.region_path)
    channel = webhook_channel(region)
    if channel is None:
        raise click.ClickException(f"the region has no {CHANNEL_KIND} channel with webhook = true")
    store = Store.from_url(settings.database_url)
    try:
        token = webhook_token(ClientRegistry(store), client_name)
        count = subscribe_offices(
            channel, region, callback_base_url, token, timeout_s=settings.delivery_timeout_s
        )
    except HubError as exc:
        raise click.ClickException(exc.reason) from exc
    finally:
        store.close()
    click.echo(f"{count} e-Doręczenia mailbox(es) subscribed to {callback_base_url}")
