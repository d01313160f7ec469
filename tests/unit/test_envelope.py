import dataclasses
import uuid

import pytest

from hub.envelope import Address, Envelope


def make_envelope(**changes):
    values = {
        "document_type": "http://crd.gov.pl/wzor/2013/12/12/1410/",
        "source": "epuap",
        "destination": Address("146501_1"),
        "body": b"<a/>",
    }
    values.update(changes)
    return Envelope(**values)


def test_each_envelope_gets_its_own_id_and_opens_its_own_case():
    first, second = make_envelope(), make_envelope()
    assert first.envelope_id != second.envelope_id
    assert first.correlation_id == str(first.envelope_id)


def test_an_envelope_keeps_the_case_it_was_given():
    envelope = make_envelope(correlation_id="case-7")
    assert envelope.correlation_id == "case-7"


def test_envelope_is_frozen_and_headers_cannot_be_mutated():
    envelope = make_envelope(headers={"a": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.body = b"x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        envelope.headers["a"] = "2"  # type: ignore[index]


def test_with_headers_returns_a_copy_and_leaves_the_original():
    envelope = make_envelope(headers={"a": "1"})
    changed = envelope.with_headers(b="2")
    assert dict(changed.headers) == {"a": "1", "b": "2"}
    assert dict(envelope.headers) == {"a": "1"}
    assert changed.envelope_id == envelope.envelope_id


def test_body_sha256_is_the_digest_of_the_body():
    assert make_envelope(body=b"abc").body_sha256 == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_address_round_trips_through_text():
    assert Address.parse("eod@146501_1") == Address("146501_1", "eod")
    assert Address.parse("146501_1") == Address("146501_1")
    assert str(Address("146501_1", "tax")) == "tax@146501_1"


def test_describe_leaves_the_body_out():
    envelope = make_envelope(envelope_id=uuid.UUID(int=1), body=b"secret")
    facts = envelope.describe()
    assert facts["size_bytes"] == 6
    assert "secret" not in str(facts)
