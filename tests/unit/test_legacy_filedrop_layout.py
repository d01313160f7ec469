"""The file-drop record layout (CSV and fixed width) and the folders an endpoint names."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.filedrop.folders import SystemFolders, folder_of
from adapters.filedrop.layout import FIELDS, FIXED_WIDTHS, LayoutError, Record, parse, render
from hub.envelope import Address, Envelope
from hub.errors import ConfigurationError
from hub.region import EndpointConfig

ENVELOPE = Envelope(
    document_type="urn:hub:legacy:faktura-ksiegowa:1",
    source="portal",
    destination=Address("146501_1", "ksiegowosc"),
    body='<f>Zażółć; "gęślą"\r\njaźń</f>'.encode(),
    correlation_id="sprawa-1",
    created_at=datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
)


@pytest.mark.parametrize("file_format", ["csv", "fixed-width"])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1250"])
def test_a_record_reads_back_as_written(file_format, encoding):
    record = Record.of(ENVELOPE)
    assert parse(render(record, file_format, encoding), file_format, encoding) == record


def test_csv_is_a_header_and_one_semicolon_separated_row_ending_crlf():
    lines = render(Record.of(ENVELOPE), "csv").decode().split("\r\n")
    assert lines[0] == ";".join(FIELDS)
    assert lines[1].startswith(
        f"{ENVELOPE.envelope_id};sprawa-1;urn:hub:legacy:faktura-ksiegowa:1;"
    )
    assert ";2024-05-01T10:00:00+00:00;application/xml;" in lines[1]
    assert lines[2:] == [""]


def test_fixed_width_fields_sit_where_the_table_says():
    line = render(Record.of(ENVELOPE), "fixed-width").decode()
    starts = [sum(FIXED_WIDTHS[:n]) for n in range(len(FIXED_WIDTHS) + 1)]
    assert starts[-1] == 379
    assert line[: starts[1]] == str(ENVELOPE.envelope_id)
    assert line[starts[3] : starts[4]] == "146501_1  "
    assert line[starts[5] : starts[6]] == "2024-05-01T10:00:00+00:00"
    assert line[starts[8] : starts[9]] == f"{len(ENVELOPE.body):010d}"
    assert line.endswith("\r\n")


def test_a_value_longer_than_its_fixed_width_field_is_refused():
    record = dataclasses.replace(Record.of(ENVELOPE), source="s" * 21)
    with pytest.raises(LayoutError, match="ZRODLO is 21 characters, its field holds 20"):
        render(record, "fixed-width")


def test_text_the_encoding_cannot_write_is_refused():
    record = dataclasses.replace(Record.of(ENVELOPE), case_id="sprawa-😀")
    with pytest.raises(LayoutError, match="cannot be written in cp1250"):
        render(record, "csv", "cp1250")


def test_a_damaged_content_is_noticed():
    data = render(Record.of(ENVELOPE), "csv").replace(b";0000000", b";0000001")
    with pytest.raises(LayoutError, match="does not match"):
        parse(data, "csv")


def endpoint(url, **options):
    return EndpointConfig(
        name="ksiegowosc@1421",
        kind="file-drop",
        office="1421",
        system="ksiegowosc",
        url=url,
        options=options,
    )


def test_folders_default_to_in_out_and_an_archive_under_out():
    folders = SystemFolders.of(endpoint("file:///srv/wymiana/1421"))
    assert (folders.inbox, folders.outbox, folders.archive) == (
        Path("/srv/wymiana/1421/in"),
        Path("/srv/wymiana/1421/out"),
        Path("/srv/wymiana/1421/out/archiwum"),
    )


def test_folder_options_may_be_absolute():
    folders = SystemFolders.of(endpoint("file:///srv/x", inbox="/mnt/fk/WE", outbox="WY"))
    assert (folders.inbox, folders.outbox) == (Path("/mnt/fk/WE"), Path("/srv/x/WY"))


@pytest.mark.parametrize("url", ["http://host/x", "file://server/share", "/srv/x"])
def test_only_local_file_urls_name_a_folder(url):
    with pytest.raises(ConfigurationError, match="not a local file:// URL"):
        folder_of(url, "ksiegowosc@1421")
