"""The file-exchange simulator: a loop that reads an inbox folder and writes answers.

It plays an old system the way such systems work: every ``IDLE_WAIT_S`` it looks into
each office's inbox for ``*.csv`` (or ``*.txt`` in fixed width) files, reads the record
(the layout the hub documents in its file-drop adapter: the envelope id is the first
CSV column of the data row, or the first 36 characters of the fixed-width line; the
content is base64 with its SHA-256), registers it once per envelope id, writes
``<envelope id>.ack`` (its registration number) or ``<envelope id>.err`` (a reason)
into the outbox, atomically, and moves the read file to ``<inbox>/przetworzone``.

A file that arrives again for an envelope id it has seen is not registered again: the
first answer is written again.

Faults: ``down`` (stops reading; files wait in the inbox), ``slow`` (``delay_s`` per
file), ``refuse`` (the next ``times`` files get an ``.err``), ``unmount`` (the inbox
folder disappears, as when the share is not mounted; ``mount`` brings it back).
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

IDLE_WAIT_S = 0.05
PROCESSED = "przetworzone"
OFFLINE_SUFFIX = ".offline"
ENVELOPE_ID_WIDTH = 36
# Where the digest and the content sit in a fixed-width record (see the hub's layout).
FIXED_SHA256 = slice(305, 369)
FIXED_CONTENT_FROM = 379


@dataclass(frozen=True)
class Exchange:
    """One office's folders and file format."""

    inbox: Path
    outbox: Path
    file_format: str = "csv"
    prefix: str = "KS"

    @property
    def pattern(self) -> str:
        """The files the system reads."""
        return "*.csv" if self.file_format == "csv" else "*.txt"


class UnreadableRecord(ValueError):
    """A file the system cannot read; answered with an ``.err``."""


@dataclass
class FileSystemState:
    """Registrations, answers and controls, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    arrivals: Counter[str] = field(default_factory=Counter)
    down: bool = False
    delay_s: float = 0.0
    refusals_left: int = 0
    refusal_reason: str = "Rekord odrzucony przez system"
    answers_written: int = 0

    def stats(self) -> dict[str, Any]:
        """Totals for the admin API."""
        with self.lock:
            return {
                "arrivals": sum(self.arrivals.values()),
                "registered": len(self.numbers),
                "refused": len(self.answers) - len(self.numbers),
                "repeated_keys": sum(count - 1 for count in self.arrivals.values()),
                "answers_written": self.answers_written,
                "down": self.down,
            }

    def received(self) -> dict[str, dict[str, Any]]:
        """Per envelope id (the hub's key): arrivals and the one record."""
        with self.lock:
            return {
                key: {"count": count, "records": 1, "number": self.numbers.get(key)}
                for key, count in self.arrivals.items()
            }


class FileDropSimulator:
    """The old system as a thread; ``start``, control it, ``stop``."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.exchanges = list(exchanges)
        self.state = FileSystemState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Create the folders and start reading in a thread of its own."""
        for exchange in self.exchanges:
            exchange.inbox.mkdir(parents=True, exist_ok=True)
            exchange.outbox.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="filedrop-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def set_down(self, down: bool) -> None:
        """Stop (or resume) reading; files wait in the inbox meanwhile."""
        with self.state.lock:
            self.state.down = down

    def set_delay(self, delay_s: float) -> None:
        """Take ``delay_s`` over each file from now on."""
        with self.state.lock:
            self.state.delay_s = delay_s

    def refuse(self, times: int, reason: str | None = None) -> None:
        """Answer the next ``times`` new documents with an ``.err``."""
        with self.state.lock:
            self.state.refusals_left = times
            if reason:
                self.state.refusal_reason = reason

    def unmount(self) -> None:
        """Take the inbox folders away, as an unmounted share."""
        with self.state.lock:
            for exchange in self.exchanges:
                exchange.inbox.rename(
                    exchange.inbox.with_name(exchange.inbox.name + OFFLINE_SUFFIX)
                )

    def mount(self) -> None:
        """Bring the inbox folders back."""
        with self.state.lock:
            for exchange in self.exchanges:
                offline = exchange.inbox.with_name(exchange.inbox.name + OFFLINE_SUFFIX)
                if offline.exists():
                    offline.rename(exchange.inbox)

    def clear_faults(self) -> None:
        """Back to normal: mounted, reading, full speed, no refusals."""
        self.mount()
        with self.state.lock:
            self.state.down = False
            self.state.delay_s = 0.0
            self.state.refusals_left = 0

    # ---- the system's own loop -------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            worked = False
            with self.state.lock:
                down = self.state.down
            if not down:
                for exchange in self.exchanges:
                    worked = self._read_inbox(exchange) or worked
            if not worked:
                self._stop.wait(IDLE_WAIT_S)

    def _read_inbox(self, exchange: Exchange) -> bool:
        try:
            files = sorted(exchange.inbox.glob(exchange.pattern))
        except OSError:
            return False  # unmounted
        for path in files:
            with self.state.lock:
                delay_s = self.state.delay_s
            if delay_s:
                time.sleep(delay_s)
            self._process(exchange, path)
        return bool(files)

    def _process(self, exchange: Exchange, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            return  # moved or unmounted under us: looked at again next round
        key = path.stem
        with self.state.lock:
            self.state.arrivals[key] += 1
            if key not in self.state.answers:
                self.state.answers[key] = self._first_answer(exchange, key, data)
            suffix, answer = self.state.answers[key]
        _write_atomically(exchange.outbox / f"{key}{suffix}", answer)
        processed = exchange.inbox / PROCESSED
        processed.mkdir(exist_ok=True)
        path.replace(processed / f"{path.name}.{self.state.arrivals[key]}")
        with self.state.lock:
            self.state.answers_written += 1

    def _first_answer(self, exchange: Exchange, key: str, data: bytes) -> tuple[str, bytes]:
        # Called under the lock: the system decides about a document once.
        try:
            envelope_id = _read_record(data, exchange.file_format)
        except UnreadableRecord as exc:
            return ".err", f"Nieczytelny rekord: {exc}\r\n".encode()
        if envelope_id != key:
            return ".err", f"Rekord {envelope_id} w pliku {key}\r\n".encode()
        if self.state.refusals_left > 0:
            self.state.refusals_left -= 1
            return ".err", f"{self.state.refusal_reason}\r\n".encode()
        sequence = len(self.state.numbers) + 1
        number = f"{exchange.prefix}/{datetime.now(UTC).year}/{sequence:06d}"
        self.state.numbers[key] = number
        return ".ack", f"{number}\r\n".encode()


def _read_record(data: bytes, file_format: str) -> str:
    """The envelope id of a record, after checking its content against its digest."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableRecord("not UTF-8") from exc
    if file_format == "csv":
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
        if len(rows) != 2 or len(rows[1]) != 10:
            raise UnreadableRecord("expected a header and one record of 10 columns")
        envelope_id, digest, content = rows[1][0], rows[1][7], rows[1][9]
    else:
        line = text.rstrip("\r\n")
        envelope_id = line[:ENVELOPE_ID_WIDTH].strip()
        digest, content = line[FIXED_SHA256].strip(), line[FIXED_CONTENT_FROM:]
    try:
        decoded = base64.b64decode(content, validate=True)
    except binascii.Error as exc:
        raise UnreadableRecord("content is not base64") from exc
    if hashlib.sha256(decoded).hexdigest() != digest:
        raise UnreadableRecord("content does not match its SHA256")
    return envelope_id


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    with temporary.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(target)
