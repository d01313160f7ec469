"""The region as running processes see it: reloaded when its file changes, never broken.

A regional centre edits the region file (a new office, a system that now handles a
service) and the running workers, poller and HTTP API take the new catalogue without a
restart. Each reader asks :meth:`RegionSource.current` between units of work; at most
every ``reload_s`` seconds that looks at the file's modification time, size and inode
(an editor that replaces the file changes the inode), and if they changed, loads and
checks the file. A file that fails to load or to check is logged and the old region
kept: a typo in the catalogue must not stop the hub or lose a message.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from hub.errors import ConfigurationError
from hub.logging import get_logger
from hub.region import Region, load_region
from hub.routing import Router, Step

log = get_logger(__name__)

# What tells one version of the file from another without reading it.
FileVersion = tuple[int, int, int]


class RegionSource:
    """The current region of one region file, reloaded when the file changes."""

    def __init__(
        self,
        path: Path,
        reload_s: float,
        *,
        check: Callable[[Region], object] | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the file once (a broken file at start is a configuration error).

        Args:
            path: the region file.
            reload_s: look at the file at most this often; 0 never looks again.
            check: called with every region before it is taken; raising
                ``ConfigurationError`` refuses it (the routing worker builds its router).
            environ: for ``${NAME}`` references (default: the process environment).
            clock: monotonic seconds (tests pass their own).

        Raises:
            ConfigurationError: the file cannot be loaded or fails the check.
        """
        self._path = path
        self._reload_s = reload_s
        self._check = check
        self._environ = environ
        self._clock = clock
        self._lock = threading.Lock()
        self._version = _version_of(path)
        self._region = self._load()
        self._seen = self._version
        self._looked_at = clock()

    @property
    def path(self) -> Path:
        """The region file."""
        return self._path

    def current(self) -> Region:
        """The region to use now: the newest valid version of the file."""
        if self._reload_s <= 0 or self._clock() - self._looked_at < self._reload_s:
            return self._region
        with self._lock:
            if self._clock() - self._looked_at >= self._reload_s:
                self._looked_at = self._clock()
                self._reload_if_changed()
        return self._region

    def _reload_if_changed(self) -> None:
        try:
            version = _version_of(self._path)
        except ConfigurationError as exc:
            log.warning("region_reload_failed", path=str(self._path), reason=exc.reason)
            return
        if version == self._seen:
            return
        # Remember the version even if it fails, so a broken file is reported once.
        self._seen = version
        try:
            region = self._load()
        except ConfigurationError as exc:
            log.warning(
                "region_reload_failed",
                path=str(self._path),
                reason=exc.reason,
                kept="the previous region",
            )
            return
        previous, self._region = self._region, region
        self._version = version
        log.info(
            "region_reloaded",
            path=str(self._path),
            offices=len(region.offices),
            endpoints=len(region.endpoints),
            new_endpoints=len(set(region.endpoints) - set(previous.endpoints)),
        )

    def _load(self) -> Region:
        region = load_region(self._path, self._environ)
        if self._check is not None:
            self._check(region)
        return region


class RouterSource:
    """A :class:`Router` over the current region, rebuilt when the region is reloaded."""

    def __init__(self, regions: RegionSource, steps: Mapping[str, Step]) -> None:
        self._regions = regions
        self._steps = dict(steps)
        self._router = Router(regions.current(), self._steps)

    @classmethod
    def of_file(cls, path: Path, reload_s: float, steps: Mapping[str, Step]) -> RouterSource:
        """A router source over ``path`` that refuses a region whose routes name unknown steps."""
        regions = RegionSource(path, reload_s, check=lambda region: Router(region, steps))
        return cls(regions, steps)

    @property
    def regions(self) -> RegionSource:
        """Where the regions come from."""
        return self._regions

    def current(self) -> Router:
        """The router of the current region."""
        region = self._regions.current()
        if self._router.region is not region:
            self._router = Router(region, self._steps)
        return self._router


def _version_of(path: Path) -> FileVersion:
    try:
        status = os.stat(path)
    except OSError as exc:
        raise ConfigurationError(f"region file {path} cannot be read: {exc}") from exc
    return (status.st_mtime_ns, status.st_size, status.st_ino)
