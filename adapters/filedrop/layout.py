"""The record layout of the files the hub drops for an old system, in CSV or fixed width.

Pure: bytes in, bytes out; no folders. One file holds one delivery: one record with
the hub's facts about the document and the document itself, base64-encoded (so a
document with line breaks or separators cannot break the record).

CSV (``format = "csv"``, file ``<envelope id>.csv``): a header row and one data row,
fields separated by ``;`` (as the spreadsheets such systems grew up with write them),
quoted where needed (RFC 4180), lines ending CRLF. Columns, in order: ``FIELDS``.

Fixed width (``format = "fixed-width"``, file ``<envelope id>.txt``): one line, CRLF,
each field left-aligned and space-padded to its width, the last field (the content)
taking the rest of the line:

====================  ======  ====  =======================================
field                 from    width  holds
====================  ======  ====  =======================================
ID_KOPERTY            1       36    the envelope id (UUID)
ID_SPRAWY             37      64    the case (correlation id)
TYP_DOKUMENTU         101     100   the document type
URZAD                 201     10    the office, TERYT in the hub's form
ZRODLO                211     20    where the document came from
DATA_UTWORZENIA       231     25    ISO 8601, UTC, seconds: 2024-05-01T10:00:00+00:00
TYP_TRESCI            256     50    the content's media type
SHA256                306     64    hex SHA-256 of the content
DLUGOSC_TRESCI        370     10    the content's length in bytes, zero-padded
TRESC_BASE64          380     rest  the content, base64
====================  ======  ====  =======================================

A value longer than its field cannot be written in fixed width: :class:`LayoutError`.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime

from hub.envelope import Envelope

CSV_DELIMITER = ";"
FIELDS = (
    "ID_KOPERTY",
    "ID_SPRAWY",
    "TYP_DOKUMENTU",
    "URZAD",
    "ZRODLO",
    "DATA_UTWORZENIA",
    "TYP_TRESCI",
    "SHA256",
    "DLUGOSC_TRESCI",
    "TRESC_BASE64",
)
FIXED_WIDTHS = (36, 64, 100, 10, 20, 25, 50, 64, 10)
FORMATS = {"csv": ".csv", "fixed-width": ".txt"}


class LayoutError(ValueError):
    """A record that cannot be written or read in the layout."""


@dataclass(frozen=True, slots=True)
class Record:
    """One delivery as the file carries it."""

    envelope_id: str
    case_id: str
    document_type: str
    office: str
    source: str
    created_at: str
    content_type: str
    content: bytes

    @classmethod
    def of(cls, envelope: Envelope) -> Record:
        """The record of ``envelope``."""
        return cls(
            envelope_id=str(envelope.envelope_id),
            case_id=envelope.correlation_id,
            document_type=envelope.document_type,
            office=envelope.destination.office,
            source=envelope.source,
            created_at=created_at_text(envelope.created_at),
            content_type=envelope.content_type,
            content=envelope.body,
        )

    def values(self) -> tuple[str, ...]:
        """The record's fields as text, in ``FIELDS`` order."""
        return (
            self.envelope_id,
            self.case_id,
            self.document_type,
            self.office,
            self.source,
            self.created_at,
            self.content_type,
            hashlib.sha256(self.content).hexdigest(),
            f"{len(self.content):010d}",
            base64.b64encode(self.content).decode("ascii"),
        )


def render(record: Record, file_format: str, encoding: str = "utf-8") -> bytes:
    """The file for ``record`` in ``file_format`` (``csv`` or ``fixed-width``).

    Raises:
        LayoutError: an unknown format, a value too long for its fixed-width field, or
            text the encoding cannot write.
    """
    if file_format == "csv":
        text = _render_csv(record)
    elif file_format == "fixed-width":
        text = _render_fixed(record)
    else:
        raise LayoutError(f"unknown file format {file_format!r} (known: {sorted(FORMATS)})")
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise LayoutError(f"the record cannot be written in {encoding}: {exc}") from exc


def parse(data: bytes, file_format: str, encoding: str = "utf-8") -> Record:
    """Read a file written by :func:`render` (what the old system does; used by tests).

    Raises:
        LayoutError: not a record of the layout, or its content does not match its digest.
    """
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LayoutError(f"not {encoding} text: {exc}") from exc
    values = _parse_csv(text) if file_format == "csv" else _parse_fixed(text)
    return _record(values)


def _render_csv(record: Record) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerow(FIELDS)
    writer.writerow(record.values())
    return buffer.getvalue()


def _render_fixed(record: Record) -> str:
    values = record.values()
    for name, width, value in zip(FIELDS, FIXED_WIDTHS, values, strict=False):
        if len(value) > width:
            raise LayoutError(f"{name} is {len(value)} characters, its field holds {width}")
    padded = [value.ljust(width) for width, value in zip(FIXED_WIDTHS, values, strict=False)]
    return "".join(padded) + values[-1] + "\r\n"


def _parse_csv(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text), delimiter=CSV_DELIMITER))
    if len(rows) != 2 or tuple(rows[0]) != FIELDS or len(rows[1]) != len(FIELDS):
        raise LayoutError("expected a header row of the layout's columns and one record")
    return rows[1]


def _parse_fixed(text: str) -> list[str]:
    line = text.rstrip("\r\n")
    values, position = [], 0
    for width in FIXED_WIDTHS:
        values.append(line[position : position + width].rstrip())
        position += width
    values.append(line[position:])
    if len(line) < position:
        raise LayoutError(f"a record is at least {position} characters, this one {len(line)}")
    return values


def _record(values: list[str]) -> Record:
    try:
        content = base64.b64decode(values[9], validate=True)
    except binascii.Error as exc:
        raise LayoutError(f"TRESC_BASE64 is not base64: {exc}") from exc
    if hashlib.sha256(content).hexdigest() != values[7] or f"{len(content):010d}" != values[8]:
        raise LayoutError("the content does not match its SHA256 and length")
    envelope_id, case_id, document_type, office, source, created_at, content_type = values[:7]
    return Record(
        envelope_id, case_id, document_type, office, source, created_at, content_type, content
    )


def created_at_text(moment: datetime) -> str:
    """A moment as the layout writes it (UTC, whole seconds)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
