"""``hub client``: what an operator types to add, list, rotate and revoke the hub's callers."""

import pytest
from click.testing import CliRunner

from hub.cli import cli
from hub.identity import ClientRegistry
from hub.store.repository import Store


@pytest.fixture
def environment(tmp_path):
    return {"HUB_VAR_DIR": str(tmp_path), "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}


@pytest.fixture
def hub(environment):
    runner = CliRunner()

    def run(*arguments, stdin=None):
        return runner.invoke(cli, list(arguments), env=environment, input=stdin)

    assert run("db", "upgrade").exit_code == 0
    return run


@pytest.fixture
def registry(environment):
    store = Store.from_url(environment["HUB_DATABASE_URL"])
    yield ClientRegistry(store)
    store.close()


def test_the_new_token_is_the_last_line_printed_and_names_its_client(hub, registry):
    added = hub("client", "add", "eod-radom", "--office", "146301_1", "--source", "eod")

    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    assert registry.authenticate(token).office == "146301_1"


def test_an_adopted_token_is_read_from_standard_input(hub, registry):
    added = hub(
        "client", "add", "eod-plock", "--office", "146201_1", "--source", "eod", "--adopt-token",
        stdin="the-old-shared-intake-token\n",
    )  # fmt: skip

    assert added.exit_code == 0, added.output
    assert added.stdout.strip().splitlines()[-1] == "the-old-shared-intake-token"
    assert registry.authenticate("the-old-shared-intake-token").name == "eod-plock"


def test_an_office_outside_the_catalogue_is_refused(hub, registry):
    added = hub("client", "add", "eod-x", "--office", "999999_9", "--source", "eod")
    assert added.exit_code == 2
    assert "not an office of the catalogue" in added.output
    assert registry.records() == []


def test_rotate_prints_a_new_token_and_revoke_ends_both(hub, registry):
    old = hub("client", "add", "portal", "--office", "portal").stdout.strip().splitlines()[-1]
    rotated = hub("client", "rotate", "portal", "--overlap", "30m")
    new = rotated.stdout.strip().splitlines()[-1]

    assert rotated.exit_code == 0, rotated.output
    assert registry.authenticate(old).name == registry.authenticate(new).name == "portal"
    listed = hub("client", "list").stdout
    assert "portal\tportal\tsources=-\tapis=cases" in listed
    assert "old token until" in listed

    assert hub("client", "revoke", "portal").exit_code == 0
    assert registry.authenticate(old) is None
    assert registry.authenticate(new) is None
    assert hub("client", "revoke", "portal").exit_code != 0
