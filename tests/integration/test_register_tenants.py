"""Registers' own RabbitMQ users: each reads its .in, answers through its exchange, and no more.

Against the real broker, in a fresh vhost per test: what each tenant may do is asked of
RabbitMQ itself (ACCESS_REFUSED is the broker's answer, not the hub's).
"""

from __future__ import annotations

import functools
import json
import stat
import time
import uuid

import pika
import pika.exceptions
import pytest
from click.testing import CliRunner
from legacy_support import write_region
from support import OFFICES
from tenant_support import create_vhost, in_vhost, remove_vhost_and_tenants

from adapters.registers.interface import RegisterQueues
from adapters.registers.tenant_command import amqp_tenant
from adapters.registers.tenants import (
    Rabbitmqctl,
    Tenant,
    TenantAccounts,
    read_credentials,
    region_tenants,
)
from hub.region import load_region
from hub.settings import embedded_region_path
from simulators.demo import Demo
from simulators.processes import start_simulator, stop_all

WARSAW, COUNTY = OFFICES[0][0], OFFICES[1][0]
ACCESS_REFUSED = 403


@pytest.fixture
def accounts():
    return Rabbitmqctl()


@pytest.fixture
def vhost(amqp_url, accounts):
    name = f"test-tenants-{uuid.uuid4().hex[:10]}"
    create_vhost(accounts, name, pika.URLParameters(amqp_url).credentials.username)
    made: list[Tenant] = []
    yield name, made
    remove_vhost_and_tenants(name, made)


@pytest.fixture
def hub_url(amqp_url, vhost):
    return in_vhost(amqp_url, vhost[0])


@pytest.fixture
def tenants(vhost, hub_url, accounts):
    """Warsaw's and the county's alcohol registers, made in the test's vhost."""
    name, made = vhost
    system = f"alkohol{uuid.uuid4().hex[:6]}"
    made.extend(
        Tenant(
            system,
            office,
            name,
            RegisterQueues(f"legacy.{system}.{office}.in", f"legacy.{system}.{office}.out"),
            hub_url,
        )
        for office in (WARSAW, COUNTY)
    )
    provisioned = TenantAccounts(accounts).add(made)
    return {item.tenant.office: (item.tenant, item.password) for item in provisioned}


def connect_as(amqp_url, tenant, password):
    url = in_vhost(amqp_url, tenant.vhost, tenant.user, password)
    return pika.BlockingConnection(pika.URLParameters(url))


@pytest.fixture
def hub_channel(hub_url):
    connection = pika.BlockingConnection(pika.URLParameters(hub_url))
    channel = connection.channel()
    channel.queue_declare("hub.accepted", durable=True, arguments={"x-queue-type": "quorum"})
    yield channel
    connection.close()


@pytest.fixture
def warsaw(amqp_url, tenants):
    tenant, password = tenants[WARSAW]
    connection = connect_as(amqp_url, tenant, password)
    yield tenant, connection
    if connection.is_open:
        connection.close()


def refused(action) -> int:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as raised:
        action()
    return raised.value.reply_code


def test_a_tenant_takes_its_documents_and_answers_through_its_own_exchange(warsaw, hub_channel):
    tenant, connection = warsaw
    hub_channel.basic_publish("", tenant.queues.documents, b"<Wniosek/>")
    channel = connection.channel()
    channel.confirm_delivery()

    channel.queue_declare(tenant.queues.documents, passive=True)
    channel.exchange_declare(tenant.queues.answers_exchange, passive=True)
    method, _properties, body = channel.basic_get(tenant.queues.documents, auto_ack=True)
    channel.basic_publish(
        tenant.queues.answers_exchange, "", b'{"kind": "acknowledgement"}', mandatory=True
    )

    assert method is not None
    assert body == b"<Wniosek/>"
    _method, _properties, answer = hub_channel.basic_get(tenant.queues.answers, auto_ack=True)
    assert answer == b'{"kind": "acknowledgement"}'


@pytest.mark.parametrize(
    "target",
    [
        "the hub's accepted queue",
        "its own answers queue by the default exchange",
        "another office's answers exchange",
        "a built-in exchange",
    ],
)
def test_a_tenant_is_refused_publishing_anywhere_but_its_own_answers_exchange(
    warsaw, tenants, hub_channel, target
):
    tenant, connection = warsaw
    county = tenants[COUNTY][0]
    exchange, routing_key = {
        "the hub's accepted queue": ("", "hub.accepted"),
        "its own answers queue by the default exchange": ("", tenant.queues.answers),
        "another office's answers exchange": (county.queues.answers_exchange, ""),
        "a built-in exchange": ("amq.fanout", ""),
    }[target]
    channel = connection.channel()
    channel.confirm_delivery()

    code = refused(lambda: channel.basic_publish(exchange, routing_key, b"forged", mandatory=True))

    assert code == ACCESS_REFUSED
    for queue in ("hub.accepted", tenant.queues.answers, county.queues.answers):
        assert hub_channel.queue_declare(queue, passive=True).method.message_count == 0


@pytest.mark.parametrize("how", ["basic.get", "basic.consume", "queue.purge"])
def test_a_tenant_cannot_read_another_offices_documents_or_any_answers(
    warsaw, tenants, hub_channel, how
):
    tenant, connection = warsaw
    county = tenants[COUNTY][0]
    hub_channel.basic_publish("", county.queues.documents, b"<Wniosek/>")
    for queue in (county.queues.documents, tenant.queues.answers, tenant.queues.parked):
        channel = connection.channel()
        action = {
            "basic.get": functools.partial(channel.basic_get, queue),
            "basic.consume": functools.partial(channel.basic_consume, queue, lambda *_: None),
            "queue.purge": functools.partial(channel.queue_purge, queue),
        }[how]
        assert refused(action) == ACCESS_REFUSED
    assert (
        hub_channel.queue_declare(county.queues.documents, passive=True).method.message_count == 1
    )


@pytest.mark.parametrize(
    "act",
    [
        "declare a queue",
        "declare its own queue actively",
        "delete its own queue",
        "delete another office's queue",
        "declare an exchange",
        "delete its own exchange",
        "bind its answers queue elsewhere",
    ],
)
def test_a_tenant_can_neither_declare_nor_delete_nor_bind(warsaw, tenants, hub_channel, act):
    tenant, connection = warsaw
    county = tenants[COUNTY][0]
    channel = connection.channel()
    action = {
        "declare a queue": lambda: channel.queue_declare("legacy.mine", durable=True),
        "declare its own queue actively": lambda: channel.queue_declare(
            tenant.queues.documents, durable=True, arguments={"x-queue-type": "quorum"}
        ),
        "delete its own queue": lambda: channel.queue_delete(tenant.queues.documents),
        "delete another office's queue": lambda: channel.queue_delete(county.queues.documents),
        "declare an exchange": lambda: channel.exchange_declare("legacy.mine", "fanout"),
        "delete its own exchange": lambda: channel.exchange_delete(tenant.queues.answers_exchange),
        "bind its answers queue elsewhere": lambda: channel.queue_bind(
            tenant.queues.answers, "amq.fanout"
        ),
    }[act]

    assert refused(action) == ACCESS_REFUSED
    for queue in (tenant.queues.documents, county.queues.documents):
        hub_channel.queue_declare(queue, passive=True)  # still there


def test_adding_tenants_again_keeps_their_passwords_and_rotating_replaces_them(
    amqp_url, accounts, tenants
):
    tenant, first = tenants[WARSAW]
    registry = TenantAccounts(accounts)

    [again] = registry.add([tenant])
    connect_as(amqp_url, tenant, first).close()
    [rotated] = registry.add([tenant], rotate=True)

    assert again.password is None
    assert rotated.password not in (None, first)
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect_as(amqp_url, tenant, first)
    connect_as(amqp_url, tenant, rotated.password).close()


def test_a_removed_tenant_can_no_longer_connect(amqp_url, accounts, tenants):
    tenant, password = tenants[WARSAW]

    assert TenantAccounts(accounts).remove([tenant]) == 1

    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect_as(amqp_url, tenant, password)
    assert TenantAccounts(accounts).remove([tenant]) == 0


def test_the_command_shows_a_new_password_once_writes_credentials_0600_and_lists_the_tenant(
    tmp_path, amqp_url, settings, vhost, hub_url
):
    system = f"alkohol{uuid.uuid4().hex[:6]}"
    region = write_region(
        tmp_path / "registers.toml",
        systems=[{"name": system, "kind": "registers-amqp", "url": hub_url}],
        routes=[],
    )
    vhost[1].extend(
        Tenant(system, office, vhost[0], RegisterQueues("", ""), hub_url) for office, *_ in OFFICES
    )
    obj = settings.replace(region_path=region)
    credentials = tmp_path / "secrets" / "tenants.json"
    runner = CliRunner()

    added = runner.invoke(amqp_tenant, ["add", "--system", system, "--office", WARSAW], obj=obj)
    everyone = runner.invoke(
        amqp_tenant, ["add-all", "--write-credentials", str(credentials)], obj=obj
    )
    listed = runner.invoke(amqp_tenant, ["list"], obj=obj)

    assert added.exit_code == 0, added.output
    password = added.stdout.strip().splitlines()[-1]
    warsaw = Tenant.of(obj_endpoint(obj, f"{system}@{WARSAW}"))
    connect_as(amqp_url, warsaw, password).close()
    assert everyone.exit_code == 0, everyone.output
    assert "1 new password(s), 1 kept" in everyone.stdout
    entries = read_credentials(credentials)
    assert set(entries) == {f"{system}@{COUNTY}"}  # Warsaw's password was shown, not kept
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
    county = entries[f"{system}@{COUNTY}"]
    assert county["user"] == f"hub-{system}-{COUNTY}"
    connect_as(
        amqp_url, Tenant.of(obj_endpoint(obj, f"{system}@{COUNTY}")), county["password"]
    ).close()
    assert listed.exit_code == 0, listed.output
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(line[1], line[-1]) for line in lines] == [
        (f"hub-{system}-{WARSAW}", "ok"),
        (f"hub-{system}-{COUNTY}", "ok"),
    ]
    assert json.dumps(entries).count(password) == 0


def obj_endpoint(settings, name):
    return load_region(settings.region_path).endpoints[name]


def test_the_demo_gives_each_register_interface_its_own_user_and_its_simulators_answer_as_them(
    settings, vhost, hub_url, hub_channel, monkeypatch
):
    monkeypatch.setenv("HUB_REGISTERS_AMQP_URL", hub_url)
    demo = Demo(settings.replace(region_path=embedded_region_path()), 3, worker_count=1)
    children = []
    try:
        credentials = demo._create_register_tenants()
        vhost[1].extend(region_tenants(load_region(settings.var_dir / "registers-region.toml")))
        for module, *arguments in demo._domain_simulators(credentials).values():
            if module == "simulators.registers":
                assert "--office" not in arguments  # a shared interface, whatever the offices
                children.append(start_simulator(module, *arguments)[0])
        entries = read_credentials(credentials)

        for entry in entries.values():
            hub_channel.basic_publish(
                "",
                entry["documents"],
                b"<Wniosek/>",
                pika.BasicProperties(message_id=str(uuid.uuid4()), headers={"hub-office": "x"}),
            )
        answers = {
            endpoint: wait_for_answer(hub_channel, e["answers"]) for endpoint, e in entries.items()
        }
    finally:
        stop_all(children)
        demo.store.close()

    # The sample region's registers are shared modules: one tenant per system.
    assert set(entries) == {"alkohol", "drogi"}
    assert {entry["user"] for entry in entries.values()} == {"hub-alkohol", "hub-drogi"}
    assert {entry["vhost"] for entry in entries.values()} == {vhost[0]}
    assert all(
        entry["documents"].startswith(f"{settings.queue_prefix}.legacy.")
        for entry in entries.values()
    )
    assert {json.loads(body)["kind"] for body in answers.values()} == {"acknowledgement"}
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def wait_for_answer(channel, queue, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if body is not None:
            return body
        time.sleep(0.1)
    raise AssertionError(f"no answer on {queue} within {timeout_s} s")


@pytest.fixture
def shared(vhost, hub_url, accounts):
    """A system's shared interface (every office's documents on one queue pair), made in
    the test's vhost beside another system's shared one."""
    name, made = vhost
    tenants = [
        Tenant(
            system,
            None,
            name,
            RegisterQueues(f"legacy.{system}.in", f"legacy.{system}.out"),
            hub_url,
            (WARSAW, COUNTY),
        )
        for system in (f"alkohol{uuid.uuid4().hex[:6]}", f"drogi{uuid.uuid4().hex[:6]}")
    ]
    made.extend(tenants)
    return [(item.tenant, item.password) for item in TenantAccounts(accounts).add(tenants)]


def test_a_shared_tenant_takes_every_offices_documents_of_its_system_and_no_other(
    amqp_url, shared, hub_channel
):
    (alcohol, password), (roads, _) = shared
    for office in (WARSAW, COUNTY):
        hub_channel.basic_publish(
            "",
            alcohol.queues.documents,
            b"<Wniosek/>",
            pika.BasicProperties(headers={"hub-office": office}),
        )
    hub_channel.basic_publish("", roads.queues.documents, b"<Wniosek/>")
    connection = connect_as(amqp_url, alcohol, password)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        offices = []
        for _ in range(2):
            _method, properties, _body = channel.basic_get(alcohol.queues.documents, auto_ack=True)
            offices.append(properties.headers["hub-office"])
        channel.basic_publish(alcohol.queues.answers_exchange, "", b"{}", mandatory=True)
        other = connection.channel()
        read_roads = refused(lambda: other.basic_get(roads.queues.documents))
        forged = connection.channel()
        forged.confirm_delivery()
        write_roads = refused(
            lambda: forged.basic_publish(roads.queues.answers_exchange, "", b"{}", mandatory=True)
        )
    finally:
        if connection.is_open:
            connection.close()

    assert alcohol.user.startswith("hub-alkohol")
    assert offices == [WARSAW, COUNTY]
    assert (read_roads, write_roads) == (ACCESS_REFUSED, ACCESS_REFUSED)
    assert hub_channel.queue_declare(alcohol.queues.answers, passive=True).method.message_count == 1
    assert hub_channel.queue_declare(roads.queues.answers, passive=True).method.message_count == 0
    assert hub_channel.queue_declare(roads.queues.documents, passive=True).method.message_count == 1


def test_the_command_makes_one_user_for_a_shared_interface_found_by_system_or_office(
    tmp_path, amqp_url, settings, vhost, hub_url
):
    system = f"alkohol{uuid.uuid4().hex[:6]}"
    region = write_region(
        tmp_path / "registers.toml",
        systems=[
            {
                "name": system,
                "kind": "registers-amqp",
                "url": hub_url,
                "options": {"queue_in": "legacy.{system}.in", "queue_out": "legacy.{system}.out"},
            }
        ],
        routes=[],
    )
    vhost[1].append(Tenant(system, None, vhost[0], RegisterQueues("", ""), hub_url))
    obj = settings.replace(region_path=region)
    credentials = tmp_path / "tenants.json"
    runner = CliRunner()

    added = runner.invoke(amqp_tenant, ["add", "--system", system], obj=obj)
    by_office = runner.invoke(
        amqp_tenant,
        ["add", "--system", system, "--office", COUNTY, "--rotate"],
        obj=obj,
    )
    everyone = runner.invoke(
        amqp_tenant, ["add-all", "--rotate", "--write-credentials", str(credentials)], obj=obj
    )
    listed = runner.invoke(amqp_tenant, ["list"], obj=obj)
    removed = runner.invoke(amqp_tenant, ["remove", "--system", system], obj=obj)

    for result in (added, by_office, everyone, listed, removed):
        assert result.exit_code == 0, result.output
    assert f"hub-{system} in vhost {vhost[0]}: reads legacy.{system}.in" in added.stdout
    assert "shared by 2 office(s)" in by_office.stdout
    assert "1 register tenant(s) for 2 endpoint(s): 1 new password(s), 0 kept" in everyone.stdout
    [entry] = read_credentials(credentials).values()
    assert set(read_credentials(credentials)) == {system}
    assert (entry["user"], entry["documents"], entry["answers"]) == (
        f"hub-{system}",
        f"legacy.{system}.in",
        f"legacy.{system}.out",
    )
    [line] = [line.split("\t") for line in listed.stdout.splitlines()]
    assert (line[0], line[1], line[2], line[-1]) == (
        system,
        f"hub-{system}",
        "shared by 2 office(s)",
        "ok",
    )
    assert "1 register tenant(s) removed" in removed.stdout
    shared_tenant = Tenant(system, None, vhost[0], RegisterQueues("", ""), hub_url)
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect_as(amqp_url, shared_tenant, entry["password"])
