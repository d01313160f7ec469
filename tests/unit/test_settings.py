from pathlib import Path

import pytest

from hub.errors import ConfigurationError
from hub.settings import DEFAULT_AMQP_URL, Settings


def test_defaults_put_sqlite_under_var_and_use_the_local_broker(tmp_path):
    settings = Settings.load(environ={"HUB_VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{(tmp_path / 'hub.db').resolve()}"
    assert settings.amqp_url == DEFAULT_AMQP_URL == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.is_sqlite


def test_environment_overrides_the_file(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\nprefetch = 7\namqp_url = "amqp://file"\n')
    settings = Settings.load(config, environ={"HUB_AMQP_URL": "amqp://env"})
    assert settings.prefetch == 7
    assert settings.amqp_url == "amqp://env"


def test_hub_config_variable_names_the_file(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text('database_url = "postgresql+psycopg://root@127.0.0.1:5432/test"\n')
    settings = Settings.load(environ={"HUB_CONFIG": str(config)})
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert not settings.is_sqlite


def test_tuples_and_numbers_are_coerced_from_text():
    settings = Settings.load(environ={"HUB_RETRY_DELAYS_S": "1,2,3", "HUB_RELAY_IDLE_S": "0.5"})
    assert settings.retry_delays_s == (1, 2, 3)
    assert settings.relay_idle_s == 0.5
    assert isinstance(settings.region_path, Path)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HUB_PREFETCH": "many"}, "prefetch"),
        ({"HUB_LOG_FORMAT": "xml"}, "log_format"),
        ({"HUB_RETRY_DELAYS_S": "0,5"}, "retry_delays_s"),
        ({"HUB_DELIVERY_PREFETCH": "0"}, "delivery_prefetch"),
    ],
)
def test_invalid_values_are_refused_with_the_setting_named(environ, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.load(environ=environ)


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text("prefetchh = 3\n")
    with pytest.raises(ConfigurationError, match="unknown settings: prefetchh"):
        Settings.load(config, environ={})


def test_a_missing_settings_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="not found"):
        Settings.load(tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(
    "name", ["HUB_INTAKE_TOKEN", "HUB_CASE_API_CLIENTS", "HUB_DASHBOARD_TOKENS"]
)
def test_a_retired_setting_stops_the_process_and_says_what_replaced_it(name):
    with pytest.raises(ConfigurationError, match=r"settings no longer read: .*hub client add"):
        Settings.load(environ={name: "anything"})
