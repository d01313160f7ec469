"""The register simulator's decisions, without a broker: one interface per office or shared."""

from __future__ import annotations

import argparse
import json
import uuid

import pika

from simulators.registers.__main__ import _interface
from simulators.registers.peer import Interface, RegisterSimulator

SHARED = Interface("legacy.alkohol.in", "legacy.alkohol.out", "ALK")


def document(office: str | None) -> pika.BasicProperties:
    envelope_id = str(uuid.uuid4())
    headers = {"hub-envelope-id": envelope_id}
    if office is not None:
        headers["hub-office"] = office
    return pika.BasicProperties(message_id=envelope_id, headers=headers)


def answer(simulator: RegisterSimulator, interface: Interface, office: str | None) -> dict:
    _answer_id, body, _case = simulator._answer(interface, document(office), b"<w/>", None)
    return json.loads(body)


def test_a_shared_interface_registers_each_document_for_the_office_it_names():
    simulator = RegisterSimulator("amqp://x", [SHARED])

    numbers = [answer(simulator, SHARED, office)["register_number"] for office in ("1", "2", "1")]

    assert [number.split("/")[:2] for number in numbers] == [
        ["ALK", "1"],
        ["ALK", "2"],
        ["ALK", "1"],
    ]
    # Each office's register numbers count on their own.
    assert [number[-6:] for number in numbers] == ["000001", "000001", "000002"]
    assert simulator.state.stats()["registered_by_office"] == {"1": 2, "2": 1}


def test_a_shared_interface_refuses_a_document_that_names_no_office():
    simulator = RegisterSimulator("amqp://x", [SHARED])

    refusal = answer(simulator, SHARED, None)

    assert refusal["kind"] == "refusal"
    assert "hub-office" in refusal["reason"]


def test_an_offices_own_interface_registers_for_its_office_even_without_the_header():
    own = Interface("legacy.alkohol.1.in", "legacy.alkohol.1.out", "ALK", office="1")
    simulator = RegisterSimulator("amqp://x", [own])

    assert answer(simulator, own, None)["register_number"].startswith("ALK/1/")


def test_a_shared_interface_named_for_many_offices_is_consumed_once():
    simulator = RegisterSimulator("amqp://x", [SHARED, SHARED, SHARED])

    assert simulator.connections == 1
    assert simulator._sessions == {"amqp://x": [SHARED]}


def test_the_credentials_file_entry_is_found_by_the_interfaces_documents_queue():
    arguments = argparse.Namespace(
        system="alkohol",
        queue_in="legacy.{system}.in",
        queue_out="legacy.{system}.out",
        prefix="ALK",
        amqp_url="amqp://guest:guest@rabbit:5672/%2F",
    )
    tenants = {
        "alkohol": {
            "user": "hub-alkohol",
            "password": "p@ss",
            "vhost": "/",
            "documents": "legacy.alkohol.in",
            "answers": "legacy.alkohol.out",
        }
    }

    found = _interface(arguments, None, tenants)
    alone = _interface(arguments, None, {})

    assert (found.documents, found.answers, found.office) == (
        "legacy.alkohol.in",
        "legacy.alkohol.out",
        None,
    )
    assert found.amqp_url == "amqp://hub-alkohol:p%40ss@rabbit:5672/%2F"
    assert alone.amqp_url is None
