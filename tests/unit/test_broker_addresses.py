"""The broker as several addresses: a RabbitMQ cluster's nodes in one setting."""

from __future__ import annotations

import pytest

from hub.broker.connection import broker_addresses, broker_urls
from hub.errors import ConfigurationError
from hub.settings import Settings

CLUSTER = (
    "amqp://guest:guest@127.0.0.1:5681/%2F,"
    " amqp://guest:guest@127.0.0.1:5682/%2F,amqp://guest:guest@127.0.0.1:5683/%2F"
)


def test_a_comma_separated_amqp_url_names_every_node_of_a_cluster():
    settings = Settings.load(environ={"HUB_AMQP_URL": CLUSTER})

    assert broker_urls(settings.amqp_url) == [
        f"amqp://guest:guest@127.0.0.1:{port}/%2F" for port in (5681, 5682, 5683)
    ]


def test_a_single_amqp_url_is_a_cluster_of_one():
    assert broker_urls(Settings().amqp_url) == ["amqp://guest:guest@127.0.0.1:5672/%2F"]


def test_a_toml_file_may_list_the_nodes_as_an_array(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(
        '[hub]\namqp_url = ["amqp://guest:guest@node1:5672/%2F", "amqp://guest:guest@node2:5672/%2F"]\n'
    )

    settings = Settings.load(config, environ={})

    assert broker_addresses(settings.amqp_url) == "node1:5672, node2:5672"


def test_the_addresses_shown_in_messages_carry_no_credentials():
    assert broker_addresses(CLUSTER) == "127.0.0.1:5681, 127.0.0.1:5682, 127.0.0.1:5683"
    assert "guest" not in broker_addresses(CLUSTER)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "amqp://guest:guest@node1:5672/%2F,",
        "amqp://guest:guest@node1:5672/%2F,node2:5672",
        "http://node1:15672",
    ],
)
def test_a_broker_setting_that_is_not_amqp_urls_refuses_to_start(value):
    with pytest.raises(ConfigurationError, match="amqp_url") as raised:
        Settings.load(environ={"HUB_AMQP_URL": value})

    assert "guest" not in str(raised.value)
