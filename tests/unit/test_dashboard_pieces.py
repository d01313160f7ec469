"""The dashboard's pure pieces: accounts from the settings, masking, cursors, percentiles."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from hub.errors import ConfigurationError
from hub.settings import Settings
from hub.store.pages import BadCursor, Cursor, bounded, page_of
from monitoring.auth import Accounts, Role, parse_accounts, user_entry
from monitoring.masking import mask_details, mask_text, mask_words, sender_of, viewer_headers
from monitoring.queries import percentiles
from monitoring.scope import Scope
from simulators.epuap.documents import generate_pismo_ogolne


def test_accounts_are_read_from_the_settings_with_hashed_passwords():
    users = ",\n".join([user_entry("anna", "operator", "s3cret"), user_entry("jan", "viewer", "x")])
    settings = Settings(dashboard_users=users)
    accounts = Accounts.from_settings(settings)

    assert "s3cret" not in users
    assert accounts.check_password("anna", "s3cret").role is Role.OPERATOR
    assert accounts.check_password("anna", "wrong") is None
    assert accounts.check_password("nobody", "s3cret") is None


def test_the_settings_take_dashboard_users_from_the_environment():
    entry = user_entry("anna", "admin", "pw")
    settings = Settings.load(environ={"HUB_DASHBOARD_USERS": entry})
    assert parse_accounts(settings.dashboard_users)["anna"].role is Role.ADMIN


def test_an_account_may_be_scoped_to_one_office_and_an_admin_may_not():
    entry = user_entry("wanda", "operator", "pw", office="146501_1")
    assert entry.startswith("wanda:operator@146501_1:scrypt:")
    wanda = parse_accounts(entry)["wanda"]
    assert (wanda.role, wanda.office, wanda.region_wide) == (Role.OPERATOR, "146501_1", False)
    assert parse_accounts("v:viewer:h")["v"].region_wide
    with pytest.raises(ConfigurationError):
        user_entry("root", "admin", "pw", office="146501_1")


def test_a_scope_owns_the_endpoints_after_its_at_sign_only():
    warsaw = Scope("146501_1")
    assert warsaw.owns_endpoint("eod@146501_1")
    assert not warsaw.owns_endpoint("eod@146301_1")
    assert not warsaw.owns_endpoint("eod@146501_10")
    assert Scope().owns_endpoint("eod@146301_1")


@pytest.mark.parametrize("text", ["anna", "anna:boss:hash", "anna:viewer:", "anna:viewer@:h"])
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
    assert mask_details({"note": "Jan Kowalski called", "late": 3}) == {"note": "•••", "late": 3}


def test_a_viewer_sees_only_the_allowed_headers():
    headers = viewer_headers(
        {
            "epuap-reply-to": "/obywatel/skrytka",
            "filename": "pismo.xml",
            "some-new-header": "Jan Kowalski",
            "edoreczenia-message-id": "EDOR-77",
        }
    )
    assert headers == {"filename": "pismo.xml", "edoreczenia-message-id": "EDOR-77"}


def test_a_cursor_reads_back_what_it_wrote_and_refuses_anything_else():
    cursor = Cursor(datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC), "d-1")
    assert Cursor.parse(str(cursor)) == cursor
    for text in ["", "yesterday~d-1", "2026-12-03T10:00:00+00:00", "2026-12-03T10:00:00~"]:
        with pytest.raises(BadCursor):
            Cursor.parse(text)


def test_a_page_has_a_next_cursor_only_when_a_row_follows():
    def cursor_of(number):
        return Cursor(datetime(2026, 1, 1, tzinfo=UTC), str(number))

    assert page_of([1, 2, 3], 2, cursor_of).next == cursor_of(2)
    assert page_of([1, 2], 2, cursor_of).next is None
    assert page_of([1, 2, 3], 2, cursor_of).items == [1, 2]
    assert (bounded(None), bounded(0), bounded(10**6)) == (50, 1, 500)


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
