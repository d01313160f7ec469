"""A register tenant's name, its permissions as regexes, and RabbitMQ's password hash."""

from __future__ import annotations

import base64
import re

import pytest

from adapters.registers.interface import RegisterQueues
from adapters.registers.tenants import Tenant, definitions, password_hash

URL = "amqp://hub:secret@rabbit.example.gov.pl:5672/legacy"


def tenant(office="146501_1", system="alkohol", prefix="hub-demo."):
    queues = RegisterQueues(
        f"{prefix}legacy.{system}.{office}.in", f"{prefix}legacy.{system}.{office}.out"
    )
    return Tenant(system, office, "legacy", queues, URL)


def test_the_password_hash_is_rabbitmqs_salted_sha256():
    # The worked example of RabbitMQ's "Credentials and Passwords" guide.
    salt = bytes.fromhex("908DC60A")

    assert password_hash("test12", salt) == "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    assert len(base64.b64decode(password_hash("test12"))) == 4 + 32


def test_a_tenant_is_named_after_its_system_and_office():
    assert tenant().user == "hub-alkohol-146501_1"
    assert tenant().endpoint == "alkohol@146501_1"


@pytest.mark.parametrize(
    ("name", "readable"),
    [
        ("hub-demo.legacy.alkohol.146501_1.in", True),
        ("hub-demo.legacy.alkohol.146301_1.in", False),
        ("hub-demo.legacy.alkohol.146501_1.out", False),
        ("hub-demo.legacy.alkohol.146501_1.in.x", False),
        ("hub-demoXlegacy.alkohol.146501_1.in", False),  # the dots are literal
        ("", False),
    ],
)
def test_a_tenant_reads_its_own_documents_queue_only(name, readable):
    assert bool(re.search(tenant().permissions.read, name)) is readable


@pytest.mark.parametrize(
    ("name", "writable"),
    [
        ("hub-demo.legacy.alkohol.146501_1.out", True),
        ("", False),  # the default exchange would reach every queue
        ("hub.accepted", False),
        ("hub-demo.legacy.alkohol.146301_1.out", False),
        ("hub-demo.legacy.alkohol.146501_1.out.parked", False),
        ("amq.topic", False),
    ],
)
def test_a_tenant_writes_to_its_own_answers_exchange_only(name, writable):
    assert bool(re.search(tenant().permissions.write, name)) is writable


def test_a_tenant_configures_nothing():
    configure = tenant().permissions.configure

    assert not any(re.search(configure, name) for name in ("x", "hub-demo.legacy.a.1.in"))


def test_definitions_make_only_the_users_given_passwords_and_set_everyones_permissions():
    warsaw, radom = tenant(), tenant("146301_1")

    values = definitions([warsaw, radom], {radom.user: "new-password"})

    assert [user["name"] for user in values["users"]] == [radom.user]
    assert "new-password" not in str(values)
    assert values["users"][0]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert [(p["user"], p["vhost"]) for p in values["permissions"]] == [
        (warsaw.user, "legacy"),
        (radom.user, "legacy"),
    ]
