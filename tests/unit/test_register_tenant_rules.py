"""A register tenant's name, its permissions as regexes, and RabbitMQ's password hash.

A tenant is one interface: an office's own, or its system's shared one; the region's
tenants are its distinct interfaces.
"""

from __future__ import annotations

import base64
import re

import pytest

from adapters.registers.interface import RegisterQueues
from adapters.registers.tenants import (
    Tenant,
    definitions,
    password_hash,
    region_tenant,
    region_tenants,
)
from hub.errors import ConfigurationError
from hub.region import load_region

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
    assert tenant().key == "alkohol@146501_1"
    assert not tenant().shared


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


def shared_tenant(prefix="hub-demo."):
    queues = RegisterQueues(f"{prefix}legacy.alkohol.in", f"{prefix}legacy.alkohol.out")
    return Tenant("alkohol", None, "legacy", queues, URL, ("146501_1", "146301_1"))


def test_a_shared_interface_is_one_tenant_named_after_its_system():
    shared = shared_tenant()

    assert (shared.user, shared.key, shared.shared) == ("hub-alkohol", "alkohol", True)
    assert shared.permissions.read == r"^hub\-demo\.legacy\.alkohol\.in$"
    assert shared.permissions.write == r"^hub\-demo\.legacy\.alkohol\.out$"
    assert shared.permissions.configure == "^$"


@pytest.mark.parametrize(
    ("name", "readable"),
    [
        ("hub-demo.legacy.alkohol.in", True),
        ("hub-demo.legacy.alkohol.146501_1.in", False),
        ("hub-demo.legacy.alkohol.out", False),
        ("hub-demo.legacy.drogi.in", False),
        ("hub-demo.legacy.alkohol.in.parked", False),
    ],
)
def test_a_shared_tenant_reads_its_systems_documents_queue_only(name, readable):
    assert bool(re.search(shared_tenant().permissions.read, name)) is readable


SHARED = '{ queue_in = "legacy.{system}.in", queue_out = "legacy.{system}.out" }'


def region(tmp_path, systems):
    offices = "".join(
        f'[[offices]]\nid = "{office}"\nname = "Urząd {office}"\n'
        for office in ("146501_1", "146301_1", "1421")
    )
    path = tmp_path / "region.toml"
    path.write_text(f'[region]\nname = "t"\n{offices}{systems}', encoding="utf-8")
    return load_region(path)


def system(name, options="", offices=None, url="amqp://hub:secret@rabbit:5672/legacy"):
    chosen = "" if offices is None else f"offices = {offices}\n"
    extra = f"options = {options}\n" if options else ""
    return f'[[systems]]\nname = "{name}"\nkind = "registers-amqp"\nurl = "{url}"\n{chosen}{extra}'


def test_the_regions_tenants_are_one_per_shared_interface_and_one_per_office_otherwise(tmp_path):
    registers = region(tmp_path, system("alkohol", SHARED) + system("zabytki"))

    tenants = region_tenants(registers)

    assert [(t.key, t.user) for t in tenants] == [
        ("alkohol", "hub-alkohol"),
        ("zabytki@146501_1", "hub-zabytki-146501_1"),
        ("zabytki@146301_1", "hub-zabytki-146301_1"),
        ("zabytki@1421", "hub-zabytki-1421"),
    ]
    assert tenants[0].offices == ("146501_1", "146301_1", "1421")
    assert tenants[0].queues == RegisterQueues("legacy.alkohol.in", "legacy.alkohol.out")


def test_a_shared_interface_is_found_by_its_system_or_by_any_office_it_serves(tmp_path):
    registers = region(tmp_path, system("alkohol", SHARED) + system("zabytki"))

    assert region_tenant(registers, "alkohol").user == "hub-alkohol"
    assert region_tenant(registers, "alkohol", "1421").user == "hub-alkohol"
    assert region_tenant(registers, "zabytki", "1421").user == "hub-zabytki-1421"
    with pytest.raises(ConfigurationError, match="give --office"):
        region_tenant(registers, "zabytki")
    with pytest.raises(ConfigurationError, match="no registers-amqp endpoint of drogi"):
        region_tenant(registers, "drogi")
    with pytest.raises(ConfigurationError, match="no registers-amqp endpoint alkohol@9"):
        region_tenant(registers, "alkohol", "9")


def test_a_shared_interface_in_two_vhosts_is_a_tenant_in_each(tmp_path):
    registers = region(
        tmp_path,
        system("alkohol", SHARED, offices='["146501_1"]', url="amqp://h:s@rabbit:5672/one")
        + system("alkohol", SHARED, offices='["1421"]', url="amqp://h:s@rabbit:5672/two"),
    )
    tenants = region_tenants(registers)

    assert [(t.user, t.vhost, t.offices) for t in tenants] == [
        ("hub-alkohol", "one", ("146501_1",)),
        ("hub-alkohol", "two", ("1421",)),
    ]


def test_two_shared_interfaces_of_one_system_in_one_vhost_are_refused(tmp_path):
    # One user would be both; each would read the other's documents.
    registers = region(
        tmp_path,
        system("alkohol", SHARED, offices='["146501_1", "146301_1"]')
        + '[[endpoints]]\nname = "alkohol@1421"\nkind = "registers-amqp"\n'
        'url = "amqp://hub:secret@rabbit:5672/legacy"\n'
        'options = { queue_in = "legacy.alkohol.b.in", queue_out = "legacy.alkohol.b.out" }\n',
    )

    with pytest.raises(ConfigurationError, match="two shared interfaces"):
        region_tenants(registers)
