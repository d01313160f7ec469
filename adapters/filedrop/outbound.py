"""Delivering documents to an old system that reads files from a folder (kind ``file-drop``).

Each delivery becomes one file ``<envelope id>.csv`` (or ``.txt`` in fixed width) in the
system's inbox folder, in the record layout of ``layout.py``, written atomically
(``folders.write_atomically``). The file name is the envelope id, so a retry finds the
file it wrote before (or the system's answer to it) and writes nothing twice.

A delivery counts as delivered once the file is on disk; the system's answer (an
``.ack`` with its registration number or an ``.err`` with a reason, see ``inbound.py``)
comes later, so the delivery awaits a ``file-ack`` receipt.

Region example::

    [[systems]]
    name = "ksiegowosc-stara"
    kind = "file-drop"
    url = "file:///srv/wymiana/ksiegowosc/{office}"
    [systems.options]
    format = "fixed-width"   # or "csv" (the default)
    encoding = "cp1250"      # the default is utf-8
    inbox = "in"             # the defaults: in, out, out/archiwum
    outbox = "out"

Outcomes: a missing inbox folder (the share not mounted, the system's server down) and
any other I/O failure are retried; a record the layout cannot hold (a value longer than
its fixed-width field, text the encoding cannot write) is refused for good.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from adapters.filedrop.folders import SystemFolders, write_atomically
from adapters.filedrop.layout import FORMATS, LayoutError, Record, render
from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from hub.region import EndpointConfig
from hub.settings import Settings

ACK_KIND = "file-ack"
ERROR_KIND = "file-error"
ANSWER_SUFFIXES = {".ack": ACK_KIND, ".err": ERROR_KIND}


class FileDropOutbound:
    """The ``file-drop`` outbound kind: one office's old system behind a folder."""

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        self._endpoint = endpoint
        self._folders = SystemFolders.of(endpoint)
        self._format = str(endpoint.options.get("format", "csv"))
        self._encoding = str(endpoint.options.get("encoding", "utf-8"))
        if self._format not in FORMATS:
            raise ConfigurationError(
                f"endpoint {endpoint.name}: format {self._format!r} is not one of {sorted(FORMATS)}"
            )

    def setup(self) -> None:
        """Nothing to open: the folder is looked at on every delivery."""

    def stop(self) -> None:
        """Nothing to release."""

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Write ``envelope``'s file into the inbox, unless it or its answer is there already.

        Raises:
            TransientDeliveryError: the inbox folder is missing or the write failed.
            PermanentDeliveryError: the layout cannot hold the record.
        """
        target = self._folders.inbox / f"{envelope.envelope_id}{FORMATS[self._format]}"
        with _translate_file_errors(self._endpoint.name, self._folders.inbox):
            data = render(Record.of(envelope), self._format, self._encoding)
            duplicate = self._already_delivered(target)
            if not duplicate:
                write_atomically(target, data)
        return DeliveryReceipt(
            endpoint=self._endpoint.name,
            external_reference=target.name,
            duplicate=duplicate,
            awaits=ACK_KIND,
        )

    def _already_delivered(self, target: Path) -> bool:
        if not self._folders.inbox.is_dir():
            raise FileNotFoundError(f"the inbox folder {self._folders.inbox} is not there")
        envelope_id = target.stem
        answered = (
            folder / f"{envelope_id}{suffix}"
            for folder in (self._folders.outbox, self._folders.archive)
            for suffix in ANSWER_SUFFIXES
        )
        return target.exists() or any(path.exists() for path in answered)


@contextlib.contextmanager
def _translate_file_errors(endpoint: str, inbox: Path) -> Iterator[None]:
    try:
        yield
    except LayoutError as exc:
        raise PermanentDeliveryError(
            f"{endpoint}: the record does not fit the layout: {exc}"
        ) from exc
    except OSError as exc:
        raise TransientDeliveryError(f"{endpoint}: cannot write into {inbox}: {exc}") from exc
