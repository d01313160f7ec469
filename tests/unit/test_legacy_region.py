"""A region declares the legacy systems in [[systems]] blocks; each kind is installed and builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.filedrop.folders import SystemFolders
from adapters.filedrop.inbound import FileDropAnswersInbound
from adapters.registers.inbound import RegistersAnswersInbound
from adapters.registers.interface import RegisterQueues
from hub.adapters import OutboundAdapter, PollingInbound, is_polled, load_adapter_kind
from hub.errors import ConfigurationError
from hub.region import load_region
from hub.settings import Settings

REGION = """
[region]
name = "legacy"

[[offices]]
id = "146501_1"
name = "Urząd m.st. Warszawy"

[[offices]]
id = "1421"
name = "Starostwo Powiatowe w Pruszkowie"

[[systems]]
name = "finanse"
kind = "finance-soap"
url = "http://fk.example.gov.pl/{office}/system-finansowy/v1"
[systems.options]
default_kind = "FAKTURA"
document_kinds = { "urn:hub:legacy:platnosc:1" = "PLATNOSC" }

[[systems]]
name = "podatki"
kind = "tax-rest"
url = "https://podatki.example.gov.pl/{office}/api/v1/declarations"

[[systems]]
name = "zezwolenia-alkoholowe"
kind = "registers-amqp"
url = "amqp://hub:secret@rabbit.example.gov.pl:5672/legacy"

[[systems]]
name = "ksiegowosc"
kind = "file-drop"
url = "file:///srv/wymiana/ksiegowosc/{office}"
offices = ["1421"]
[systems.options]
format = "fixed-width"
encoding = "cp1250"

[[inbound]]
name = "registers-answers"
kind = "registers-answers"
url = "amqp://hub:secret@rabbit.example.gov.pl:5672/legacy"
systems = ["zezwolenia-alkoholowe"]

[[inbound]]
name = "file-answers"
kind = "file-drop-answers"
url = "file:///srv/wymiana/ksiegowosc"
systems = ["ksiegowosc"]
"""


def region(tmp_path: Path):
    path = tmp_path / "region.toml"
    path.write_text(REGION, encoding="utf-8")
    return load_region(path)


def test_every_legacy_endpoint_is_declared_per_office_with_its_options(tmp_path):
    endpoints = region(tmp_path).endpoints
    assert sorted(endpoints) == [
        "finanse@1421",
        "finanse@146501_1",
        "ksiegowosc@1421",
        "podatki@1421",
        "podatki@146501_1",
        "zezwolenia-alkoholowe@1421",
        "zezwolenia-alkoholowe@146501_1",
    ]
    assert endpoints["finanse@1421"].url == "http://fk.example.gov.pl/1421/system-finansowy/v1"
    assert RegisterQueues.of(endpoints["zezwolenia-alkoholowe@1421"]).documents == (
        "legacy.zezwolenia-alkoholowe.1421.in"
    )
    assert SystemFolders.of(endpoints["ksiegowosc@1421"]).inbox == Path(
        "/srv/wymiana/ksiegowosc/1421/in"
    )


def test_each_outbound_kind_is_installed_and_sets_up_without_the_network(tmp_path):
    settings = Settings(var_dir=tmp_path)
    for endpoint in region(tmp_path).endpoints.values():
        adapter = load_adapter_kind(endpoint.kind)(endpoint, settings)
        assert isinstance(adapter, OutboundAdapter)
        adapter.setup()  # the finance kind reads its WSDL here: a local file
        adapter.stop()


def test_the_answer_channels_are_polled_and_find_their_endpoints(tmp_path):
    legacy = region(tmp_path)
    settings = Settings(var_dir=tmp_path)
    registers, files = (
        load_adapter_kind(channel.kind)(channel, legacy, settings) for channel in legacy.inbound
    )
    assert all(is_polled(channel.kind) for channel in legacy.inbound)
    assert isinstance(registers, RegistersAnswersInbound)
    assert isinstance(files, FileDropAnswersInbound)
    assert isinstance(registers, PollingInbound)
    assert [q.answers for q in registers._queues] == [
        "legacy.zezwolenia-alkoholowe.146501_1.out",
        "legacy.zezwolenia-alkoholowe.1421.out",
    ]
    assert [f.outbox for f in files._folders] == [Path("/srv/wymiana/ksiegowosc/1421/out")]


def test_a_region_without_registers_gives_the_answer_channel_nothing_to_read(tmp_path):
    # e.g. the demo's slice of the catalogue when none of its offices keeps a register
    path = tmp_path / "region.toml"
    path.write_text(
        '[region]\nname = "no registers"\n[[offices]]\nid = "14"\nname = "Urząd"\n'
        '[[inbound]]\nname = "registers-answers"\nkind = "registers-answers"\n'
        'url = "amqp://guest:guest@127.0.0.1:1/%2F"\n',
        encoding="utf-8",
    )
    bare = load_region(path)

    answers = RegistersAnswersInbound(bare.inbound[0], bare, Settings(var_dir=tmp_path))

    assert answers._queues == []
    assert answers.poll_once(lambda *args, **kwargs: "accepted") == 0


def test_an_answer_channel_naming_registers_the_region_lacks_is_refused(tmp_path):
    path = tmp_path / "region.toml"
    path.write_text(
        '[region]\nname = "no registers"\n[[offices]]\nid = "14"\nname = "Urząd"\n'
        '[[inbound]]\nname = "registers-answers"\nkind = "registers-answers"\n'
        'url = "amqp://guest:guest@127.0.0.1:1/%2F"\nsystems = ["zabytki"]\n',
        encoding="utf-8",
    )
    bare = load_region(path)

    with pytest.raises(ConfigurationError, match="no registers-amqp endpoint"):
        RegistersAnswersInbound(bare.inbound[0], bare, Settings(var_dir=tmp_path))
