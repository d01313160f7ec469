# Celery and kombu ship no type hints: their classes and decorators are untyped.
# mypy: disallow-untyped-calls=False, disallow-subclassing-any=False
# mypy: disallow-untyped-decorators=False
"""The Celery peer of the hub's core path: one task per stored document, delivered to the EOD.

What a competent Celery 5 application with the hub's guarantees looks like, so that
``peer_celery.py`` can hold the hub against it:

- the producer (``python peer_celery_app.py produce``) reads the stored documents' ids
  and publishes one ``peer.deliver`` task each, persistent, with publisher confirms
  (``confirm_publish``: every publish waits for the broker's ack);
- the worker (``celery -A peer_celery_app worker``) consumes a durable quorum queue with
  ``acks_late`` (the ack after the task returns), ``reject_on_worker_lost`` (a killed
  child's message goes back to the queue) and a prefetch of 1 per process or thread;
- the task does the hub's work per document: reads it from PostgreSQL, runs the hub's
  own route steps for a pismo ogólne to an EOD (``check_well_formed``,
  ``verify_signature``, ``seal_for_delivery``: XAdES with the hub's key), POSTs the
  sealed delivery to the EOD with the document id as ``Idempotency-Key``, and writes
  the idempotency row and the delivered state in one transaction. A redelivered task
  whose idempotency row exists does nothing.

Configured by the environment ``peer_celery.py`` sets: ``PEER_BROKER_URL``,
``PEER_QUEUE``, ``PEER_DATABASE_URL`` (libpq), ``PEER_EOD_URL``, ``PEER_VAR_DIR`` (the
run's keystore and trust store, made by ``hub keys init``'s code).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import psycopg
import requests
from celery import Celery
from celery.worker.consumer import Consumer
from kombu.entity import Exchange, Queue

from hub.envelope import Address, Envelope
from hub.http import http_session, post_once
from hub.runtime import route_steps
from hub.settings import Settings
from hub.signing.steps import SIGNATURE_CHECKS

ROUTE_STEPS = ("check_well_formed", "verify_signature", "seal_for_delivery")
TASK_NAME = "peer.deliver"
DELIVERY_TIMEOUT_S = 10.0
QUEUE_NAME = os.environ.get("PEER_QUEUE", "bench-peer")
SCHEMA = """
CREATE TABLE peer_documents (
    id uuid PRIMARY KEY,
    correlation_id text NOT NULL,
    document_type text NOT NULL,
    source text NOT NULL,
    office text NOT NULL,
    content_type text NOT NULL,
    body bytea NOT NULL,
    status text NOT NULL DEFAULT 'accepted',
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at timestamptz,
    registration_number text,
    signature_checks jsonb
);
CREATE TABLE peer_idempotency (
    key text PRIMARY KEY,
    task_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


def queue_declaration(name: str) -> Queue:
    """The peer's work queue: durable, quorum, bound to a direct exchange of its name."""
    return Queue(
        name,
        Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


class PeerConsumer(Consumer):
    """Celery's consumer without native delayed delivery.

    Celery 5.5+ switches it on whenever it sees a quorum queue, and it then declares 28
    broker-wide ``celery_delayed_*`` quorum queues: on a broker with the stock file limit
    that is 84 of its 927 file handles, for countdowns this task never uses.
    """

    class Blueprint(Consumer.Blueprint):
        """The default consumer steps, less ``DelayedDelivery``."""

        default_steps: ClassVar[list[str]] = [
            step
            for step in Consumer.Blueprint.default_steps
            if not step.endswith(":DelayedDelivery")
        ]


app = Celery("peer", broker=os.environ.get("PEER_BROKER_URL", "amqp://guest:guest@127.0.0.1//"))
app.conf.update(
    broker_transport_options={"confirm_publish": True},
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_queues=[queue_declaration(QUEUE_NAME)],
    task_default_queue=QUEUE_NAME,
    task_default_exchange=QUEUE_NAME,
    task_default_routing_key=QUEUE_NAME,
    task_ignore_result=True,
    task_serializer="json",
    # No pidbox (remote control) or event queues: the run declares one queue only.
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    task_send_sent_event=False,
    worker_consumer=f"{__name__}:PeerConsumer",
    worker_hijack_root_logger=False,
)


# --- what each worker process (or thread) holds ------------------------------------


@dataclass
class Resources:
    """One process's or thread's connections and route steps, made at its first task."""

    database: psycopg.Connection[Any]
    session: requests.Session
    steps: list[Callable[[Envelope], Envelope]]
    eod_url: str


_local = threading.local()


def resources() -> Resources:
    """This thread's resources; a forked child makes its own at its first task."""
    held: Resources | None = getattr(_local, "resources", None)
    if held is None or getattr(_local, "pid", None) != os.getpid():
        held = make_resources()
        _local.resources, _local.pid = held, os.getpid()
    return held


def make_resources() -> Resources:
    """Connect to the database and the EOD; build the hub's steps over the run's keys."""
    settings = Settings.load(environ={"HUB_VAR_DIR": os.environ["PEER_VAR_DIR"]})
    steps = route_steps(settings)
    eod_url = os.environ["PEER_EOD_URL"]
    return Resources(
        database=psycopg.connect(os.environ["PEER_DATABASE_URL"], autocommit=True),
        session=http_session(eod_url),
        steps=[steps[name] for name in ROUTE_STEPS],
        eod_url=eod_url,
    )


# --- the task -----------------------------------------------------------------------


class DeliveryRefused(Exception):
    """The EOD answered something other than 200 or 201."""


@app.task(name=TASK_NAME, bind=True)
def deliver(task: Any, document_id: str) -> None:
    """Deliver one stored document to its office's EOD, once."""
    held = resources()
    envelope = stored_envelope(held.database, document_id)
    if envelope is None:
        return  # delivered already: a redelivered task does nothing
    for step in held.steps:
        envelope = step(envelope)
    registration_number = post_to_eod(held, envelope)
    record_delivered(held.database, envelope, task.request.id, registration_number)


def stored_envelope(database: psycopg.Connection[Any], document_id: str) -> Envelope | None:
    """The stored document as an envelope, or None if its idempotency row exists."""
    with database.transaction():
        row = database.execute(
            "SELECT d.correlation_id, d.document_type, d.source, d.office, d.content_type,"
            " d.body, EXISTS (SELECT 1 FROM peer_idempotency i WHERE i.key = d.id::text)"
            " FROM peer_documents d WHERE d.id = %s",
            (document_id,),
        ).fetchone()
    if row is None:
        raise LookupError(f"no stored document {document_id}")
    correlation_id, document_type, source, office, content_type, body, done = row
    if done:
        return None
    return Envelope(
        envelope_id=UUID(document_id),
        correlation_id=correlation_id,
        document_type=document_type,
        source=source,
        destination=Address(office, "eod"),
        body=bytes(body),
        content_type=content_type,
    )


def post_to_eod(held: Resources, envelope: Envelope) -> str:
    """POST the sealed delivery as the hub's EOD adapter does; return the registration."""
    url = f"{held.eod_url}/offices/{envelope.destination.office}/documents"
    headers = {
        "Content-Type": envelope.content_type,
        "Idempotency-Key": str(envelope.envelope_id),
        "X-Correlation-ID": envelope.correlation_id,
        "X-Document-Type": envelope.document_type,
        "X-Envelope-ID": str(envelope.envelope_id),
        "X-Hub-Source": envelope.source,
    }
    response = post_once(held.session, url, envelope.body, headers, DELIVERY_TIMEOUT_S)
    if response.status_code not in (200, 201):
        raise DeliveryRefused(f"EOD answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["registration_number"])


def record_delivered(
    database: psycopg.Connection[Any], envelope: Envelope, task_id: str, registration: str
) -> None:
    """The idempotency row and the delivered state, in one transaction."""
    document_id = str(envelope.envelope_id)
    checks = json.loads(envelope.headers.get(SIGNATURE_CHECKS, "[]"))
    with database.transaction():
        database.execute(
            "INSERT INTO peer_idempotency (key, task_id) VALUES (%s, %s)"
            " ON CONFLICT (key) DO NOTHING",
            (document_id, task_id),
        )
        database.execute(
            "UPDATE peer_documents SET status = 'delivered', delivered_at = clock_timestamp(),"
            " registration_number = %s, signature_checks = %s WHERE id = %s",
            (registration, json.dumps(checks), document_id),
        )


# --- the producer -------------------------------------------------------------------


def produce() -> int:
    """Publish one confirmed task per stored document, oldest first; return how many."""
    with psycopg.connect(os.environ["PEER_DATABASE_URL"]) as database:
        ids = [
            str(row[0])
            for row in database.execute("SELECT id FROM peer_documents ORDER BY received_at, id")
        ]
    with app.producer_or_acquire() as producer:
        for document_id in ids:
            # confirm_publish: the call returns once the broker has the message.
            deliver.apply_async((document_id,), producer=producer)
    return len(ids)


def main(arguments: list[str]) -> None:
    """``produce``: publish the tasks, then exit."""
    if arguments != ["produce"]:
        raise SystemExit(f"usage: {Path(__file__).name} produce")
    published = produce()
    print(f"published {published} tasks", flush=True)
    # Stay until stopped, so the run reads this process's CPU with the others'.
    signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
