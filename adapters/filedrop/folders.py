"""Where an old system's files live: its folder from the endpoint URL, and its subfolders.

An endpoint's ``url`` is a ``file://`` URL of the office's exchange folder (``{office}``
in a ``[[systems]]`` URL becomes the office id). Options name the subfolders, relative
to it or absolute: ``inbox`` (default ``in``: the hub writes documents here), ``outbox``
(default ``out``: the system writes its answers here) and ``archive`` (default
``out/archiwum``: where the hub moves answers it has filed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from hub.errors import ConfigurationError
from hub.region import EndpointConfig

UNMATCHED = "nieprzypisane"


@dataclass(frozen=True, slots=True)
class SystemFolders:
    """The folders of one endpoint."""

    inbox: Path
    outbox: Path
    archive: Path

    @property
    def unmatched(self) -> Path:
        """Where answers about no document of the hub are moved, for an operator."""
        return self.archive / UNMATCHED

    @classmethod
    def of(cls, endpoint: EndpointConfig) -> SystemFolders:
        """The folders named by the endpoint's URL and options.

        Raises:
            ConfigurationError: the URL is not a local ``file://`` URL.
        """
        root = folder_of(endpoint.url, endpoint.name)
        options = endpoint.options
        return cls(
            inbox=root / str(options.get("inbox", "in")),
            outbox=root / str(options.get("outbox", "out")),
            archive=root / str(options.get("archive", "out/archiwum")),
        )


def folder_of(url: str, what: str) -> Path:
    """The local folder a ``file://`` URL names.

    Raises:
        ConfigurationError: another scheme, or a host other than the local one.
    """
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ConfigurationError(f"{what}: {url!r} is not a local file:// URL of a folder")
    return Path(unquote(parsed.path))


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so a reader sees the whole file or none of it.

    A hidden temporary name in the same folder (the same file system, so the rename is
    atomic), flushed to disk before the rename, and the folder flushed after it, so a
    crash leaves either no file or the whole one.
    """
    temporary = target.with_name(f".{target.name}.tmp")
    with temporary.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
