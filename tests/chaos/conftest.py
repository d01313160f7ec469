"""Fault drills run the whole hub on PostgreSQL and RabbitMQ; both must answer."""

from __future__ import annotations

import os

import psycopg
import pytest

from hub.broker.connection import close_quietly, connect
from hub.errors import HubError
from hub.settings import DEFAULT_AMQP_URL

IN_CI = os.environ.get("CI") == "true"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _require(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is not reachable, and CI must run the fault drill against it")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture(scope="session", autouse=True)
def _services_answer() -> None:
    try:
        close_quietly(connect(os.environ.get("HUB_TEST_AMQP_URL", DEFAULT_AMQP_URL)))
        broker = True
    except HubError:
        broker = False
    _require(broker, "RabbitMQ")
    try:
        psycopg.connect(POSTGRES_ADMIN, connect_timeout=5).close()
        database = True
    except psycopg.OperationalError:
        database = False
    _require(database, "PostgreSQL")
