"""Filing an old system's answer files as receipts (the ``file-drop-answers`` inbound kind).

For each document the hub dropped, the system writes an answer into its outbox folder:

- ``<envelope id>.ack``: accepted; the first non-empty line is its registration number;
- ``<envelope id>.err``: refused; the text is the reason.

Only these exact names are read; the system must write them atomically (a temporary
name, then a rename), as the hub does. Each answer is kept as a receipt of the message
(``file-ack`` or ``file-error``) with the file's bytes as its document and the file
name as its id, so an answer read twice is kept once. Only after the store committed
is the file moved to the archive folder; a crash in between leaves it to be read (and
recognised) again. An answer about no document of the hub is moved to
``<archive>/nieprzypisane`` for an operator, never deleted.

Polled by ``hub poll`` like a national inbox: each round reads the outbox of every
``file-drop`` endpoint of the channel's ``systems``. The folders come from the
endpoints (``folders.py``), so the channel's ``url`` is not used to find them; by
convention it repeats the systems' folder URL. ``accept`` is not used: answers are
receipts of stored documents, not new documents.

Region example::

    [[inbound]]
    name = "ksiegowosc-stara-answers"
    kind = "file-drop-answers"
    url = "file:///srv/wymiana/ksiegowosc"
    systems = ["ksiegowosc-stara"]
"""

from __future__ import annotations

import uuid
from pathlib import Path

from adapters.filedrop.folders import SystemFolders
from adapters.filedrop.outbound import ANSWER_SUFFIXES
from hub.adapters import Accept
from hub.errors import ConfigurationError, InboundUnavailable, StoreUnavailable
from hub.logging import get_logger
from hub.receipts import Evidence
from hub.region import InboundConfig, Region
from hub.settings import Settings
from hub.store.repository import Store

log = get_logger(__name__)

OUTBOUND_KIND = "file-drop"
MAX_ANSWER_BYTES = 1024 * 1024


def answer_folders(channel: InboundConfig, region: Region) -> list[SystemFolders]:
    """The folders of every ``file-drop`` endpoint of the channel's ``systems`` (all if unset).

    Raises:
        ConfigurationError: the channel names no endpoint at all.
    """
    systems = channel.options.get("systems")
    folders = [
        SystemFolders.of(endpoint)
        for endpoint in region.endpoints.values()
        if endpoint.kind == OUTBOUND_KIND and (systems is None or endpoint.system in systems)
    ]
    if not folders:
        raise ConfigurationError(
            f"inbound channel {channel.name}: no {OUTBOUND_KIND} endpoint of systems {systems}"
        )
    return folders


class FileDropAnswersInbound:
    """The ``file-drop-answers`` inbound kind: answer files filed as receipts."""

    def __init__(self, channel: InboundConfig, region: Region, settings: Settings) -> None:
        self._name = channel.name
        self._settings = settings
        self._folders = answer_folders(channel, region)
        self._store: Store | None = None

    def setup(self) -> None:
        """Open the store."""
        self._store = Store.from_url(self._settings.database_url)

    def stop(self) -> None:
        """Close the store."""
        if self._store is not None:
            self._store.close()

    def poll_once(self, accept: Accept) -> int:
        """File every answer waiting in the outboxes; return how many were taken.

        ``accept`` is not used: answers are receipts of stored documents.

        Raises:
            InboundUnavailable: an outbox cannot be read or an answer not moved, or the
                store is unavailable; what was not archived is read again next round.
        """
        try:
            return sum(self._drain(folders) for folders in self._folders)
        except (OSError, StoreUnavailable) as exc:
            raise InboundUnavailable(f"{self._name}: {exc}") from exc

    def _drain(self, folders: SystemFolders) -> int:
        if not folders.outbox.is_dir():
            raise FileNotFoundError(f"the outbox folder {folders.outbox} is not there")
        answers = sorted(
            path
            for path in folders.outbox.iterdir()
            if path.suffix in ANSWER_SUFFIXES and path.is_file() and not path.name.startswith(".")
        )
        for path in answers:
            self._take(folders, path)
        return len(answers)

    def _take(self, folders: SystemFolders, path: Path) -> None:
        assert self._store is not None, "setup() was not called"
        envelope_id = _envelope_id(path)
        if envelope_id is None or self._store.message_status(envelope_id) is None:
            _move(path, folders.unmatched)
            log.warning("file_answer_unmatched", file=path.name)
            return
        document = path.read_bytes()[:MAX_ANSWER_BYTES]
        kind = ANSWER_SUFFIXES[path.suffix]
        new = self._store.record_receipt(envelope_id, Evidence(kind, document, path.name))
        # Moved only now: the receipt is committed.
        _move(path, folders.archive)
        log.info("file_answer_filed", envelope_id=envelope_id, kind=kind, duplicate=not new)


def _envelope_id(path: Path) -> str | None:
    try:
        return str(uuid.UUID(path.stem))
    except ValueError:
        return None


def _move(path: Path, folder: Path) -> None:
    """Move ``path`` into ``folder``, keeping an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    copy = 1
    while target.exists():
        target = folder / f"{path.name}.{copy}"
        copy += 1
    path.replace(target)
