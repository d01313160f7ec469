"""The dashboard's pure pieces: accounts from the settings, masking, percentiles."""

from __future__ import annotations

import random

import pytest

from hub.errors import ConfigurationError
from hub.settings import Settings
from monitoring.auth import Accounts, Role, parse_accounts, token_entry, user_entry
from monitoring.masking import mask_headers, mask_text, mask_words, sender_of
from monitoring.queries import percentiles
from simulators.epuap.documents import generate_pismo_ogolne


def test_accounts_are_read_from_the_settings_with_hashed_passwords():
    users = ",\n".join([user_entry("anna", "operator", "s3cret"), user_entry("jan", "viewer", "x")])
    settings = Settings(dashboard_users=users, dashboard_tokens=token_entry("ci", "viewer", "tok"))
    accounts = Accounts.from_settings(settings)

    assert "s3cret" not in users
    assert accounts.check_password("anna", "s3cret").role is Role.OPERATOR
    assert accounts.check_password("anna", "wrong") is None
    assert accounts.check_password("nobody", "s3cret") is None
    assert accounts.check_token("tok").name == "ci"
    assert accounts.check_token("other") is None


def test_the_settings_take_dashboard_users_from_the_environment():
    entry = user_entry("anna", "admin", "pw")
    settings = Settings.load(environ={"HUB_DASHBOARD_USERS": entry})
    assert parse_accounts(settings.dashboard_users)["anna"].role is Role.ADMIN


@pytest.mark.parametrize("text", ["anna", "anna:boss:hash", "anna:viewer:"])
def test_a_malformed_entry_is_a_configuration_error(text):
    with pytest.raises(ConfigurationError):
        parse_accounts(text)


def test_roles_rank_viewer_below_operator_below_admin():
    accounts = parse_accounts("v:viewer:h o:operator:h a:admin:h")
    assert not accounts["v"].can_act
    assert not accounts["v"].sees_personal_data
    assert accounts["o"].can_act
    assert accounts["o"].sees_personal_data
    assert accounts["a"].may(Role.OPERATOR)


def test_pesel_names_and_addresses_are_masked():
    assert mask_text("PESEL 45082926101 refused") == "PESEL ••••••••••• refused"
    assert mask_text("order 123456789012 kept") == "order 123456789012 kept"
    assert mask_words("Zofia Zalewska") == "Z•••• Z•••••••"
    headers = mask_headers({"epuap-reply-to": "/obywatel/skrytka", "filename": "pismo.xml"})
    assert headers == {"epuap-reply-to": "/o•••••••/s••••••", "filename": "pismo.xml"}


def test_the_sender_is_read_from_a_crwde_form_and_masked_whole():
    filing = generate_pismo_ogolne(random.Random(3), office_name="Urząd", office_teryt="1421")
    sender = sender_of(filing.content, "application/xml")
    assert sender is not None
    assert len(sender.pesel) == 11
    assert sender.name
    assert sender.address
    masked = sender.masked()
    assert masked.pesel == "•" * 11
    assert sender.name.split()[0] not in masked.name
    assert sender_of(b"not xml", "application/xml") is None
    assert sender_of(b"%PDF", "application/pdf") is None


def test_percentiles_of_nothing_one_and_many():
    assert percentiles([], (50, 99)) == [None, None]
    assert percentiles([7.0], (50, 99)) == [7.0, 7.0]
    p50, p99 = percentiles([float(value) for value in range(1, 101)], (50, 99))
    assert 49 <= p50 <= 51
    assert p99 >= 98
