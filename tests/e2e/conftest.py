"""End-to-end tests run whole hub processes; they need the real RabbitMQ."""

from __future__ import annotations

import os

import pytest

from hub.broker.connection import close_quietly, connect
from hub.errors import HubError
from hub.settings import DEFAULT_AMQP_URL


@pytest.fixture(scope="session", autouse=True)
def _rabbitmq_answers() -> None:
    try:
        close_quietly(connect(os.environ.get("HUB_TEST_AMQP_URL", DEFAULT_AMQP_URL)))
    except HubError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ is not reachable, and CI must test against it: {exc.reason}")
        pytest.skip(f"RabbitMQ is not reachable: {exc.reason}")
