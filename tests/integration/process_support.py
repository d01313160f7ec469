"""Real hub processes (``hub relay``, ``hub worker``, ``hub poll``) started by a test.

Kept out of ``conftest.py`` so test modules can import them by a name no other test
folder uses.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from hub.settings import Settings
from hub.store.models import SingletonLockRow
from hub.store.repository import Store
from simulators.processes import ChildProcess, start_hub_process


def hub_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """The ``HUB_*`` variables that make a child process the test's hub."""
    environment = {
        "HUB_VAR_DIR": str(settings.var_dir),
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_AMQP_URL": settings.amqp_url,
        "HUB_QUEUE_PREFIX": settings.queue_prefix,
        "HUB_REGION_PATH": str(settings.region_path),
        # The same delay tiers as the test declared: others would be queues of their own.
        "HUB_RETRY_DELAYS_S": ",".join(str(delay) for delay in settings.retry_delays_s),
        "HUB_MAX_ATTEMPTS": str(settings.max_attempts),
        "HUB_POLL_INTERVAL_S": str(settings.poll_interval_s),
        "HUB_RELAY_IDLE_S": str(settings.relay_idle_s),
        "HUB_DELIVERY_LEASE_S": str(settings.delivery_lease_s),
        "HUB_DELIVERY_TIMEOUT_S": str(settings.delivery_timeout_s),
        "HUB_BROKER_BACKOFF_MAX_S": str(settings.broker_backoff_max_s),
        "HUB_SINGLETON_LEASE_S": str(settings.singleton_lease_s),
        "HUB_PREFETCH": str(settings.prefetch),
        "HUB_LOG_FORMAT": "json",
    }
    return {**environment, **overrides}


class HubProcesses:
    """The hub processes one test started; all of them are stopped when it ends."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self.children: list[ChildProcess] = []

    def start(self, name: str, *arguments: str) -> ChildProcess:
        """Run ``hub <arguments>`` against the test's settings."""
        child = start_hub_process(
            name, list(arguments), hub_environment(self._settings), self._log_dir
        )
        self.children.append(child)
        return child

    def by_holder(self, holder: str) -> ChildProcess:
        """The child whose lease holder name (``host:pid``) is ``holder``."""
        pid = int(holder.rpartition(":")[2])
        return next(child for child in self.children if child.process.pid == pid)

    def logs(self) -> str:
        """Every child's log, for an assertion message."""
        parts = []
        for child in self.children:
            if child.log_path is not None and child.log_path.exists():
                tail = child.log_path.read_text(errors="replace")[-3000:]
                parts.append(f"--- {child.name} ---\n{tail}")
        return "\n".join(parts)

    def stop_all(self) -> None:
        """SIGTERM each child still running (SIGKILL after a grace period)."""
        for child in self.children:
            with contextlib.suppress(OSError):
                child.stop(grace_s=10)


@contextlib.contextmanager
def hub_processes(settings: Settings, log_dir: Path) -> Iterator[HubProcesses]:
    """Hub processes for the duration of a ``with`` block."""
    processes = HubProcesses(settings, log_dir)
    try:
        yield processes
    finally:
        processes.stop_all()


def lease_holder(store: Store, name: str) -> str | None:
    """Who holds the singleton lease ``name`` now (None: nobody, or it expired)."""
    with store.session() as session:
        row = session.scalar(select(SingletonLockRow).where(SingletonLockRow.name == name))
        return None if row is None else row.holder


def wait_for(condition: object, timeout_s: float, what: str) -> float:
    """Wait until ``condition()`` is true; return how long it took.

    Raises:
        AssertionError: it was still false after ``timeout_s``.
    """
    assert callable(condition)
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
