"""Mailboxes drained in parallel: a failing one is logged and does not stop the others."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog
from structlog.testing import capture_logs

import hub.inbound
from hub.errors import ConfigurationError, InboundUnavailable
from hub.inbound import MailboxesFailed, drain_in_parallel


def taking(count: int, done: list[str], mailbox: str):
    def drain() -> int:
        done.append(mailbox)
        return count

    return drain


def failing(error: Exception):
    def drain() -> int:
        raise error

    return drain


@pytest.fixture
def uncached_logs(monkeypatch):
    """The modules' loggers replaced by ones not cached yet: capture_logs sees only loggers
    it configures, and an earlier test of the session may have cached the modules' own."""
    for module in (hub.inbound,):
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))


def test_every_mailbox_is_drained_and_their_documents_counted():
    done: list[str] = []
    with ThreadPoolExecutor(3) as pool:
        taken = drain_in_parallel(pool, {f"/m{n}": taking(n, done, f"/m{n}") for n in range(8)})

    assert taken == sum(range(8))
    assert sorted(done) == sorted(f"/m{n}" for n in range(8))


def test_failing_mailboxes_are_logged_each_and_the_others_documents_still_counted(uncached_logs):
    done: list[str] = []
    drains = {
        "/a": taking(2, done, "/a"),
        "/broken": failing(InboundUnavailable("ePUAP answered a fault")),
        "/b": taking(3, done, "/b"),
        "/no-key": failing(ConfigurationError("keystore has no identity 'x'")),
    }
    with (
        ThreadPoolExecutor(2) as pool,
        capture_logs() as logs,
        pytest.raises(MailboxesFailed) as failure,
    ):
        drain_in_parallel(pool, drains)

    assert sorted(done) == ["/a", "/b"]
    assert failure.value.taken == 5
    assert failure.value.failed == {
        "/broken": "ePUAP answered a fault",
        "/no-key": "keystore has no identity 'x'",
    }
    assert isinstance(failure.value, InboundUnavailable)
    logged = {entry["mailbox"]: entry["code"] for entry in logs}
    assert logged == {"/broken": "inbound-unavailable", "/no-key": "configuration"}


def test_a_bug_in_one_mailbox_is_raised_only_after_the_others_are_drained():
    done: list[str] = []
    release = threading.Event()

    def slow() -> int:
        release.wait(5)
        done.append("/slow")
        return 1

    def crash() -> int:
        release.set()
        raise KeyError("bug")

    with ThreadPoolExecutor(2) as pool, pytest.raises(KeyError):
        drain_in_parallel(pool, {"/crash": crash, "/slow": slow})

    assert done == ["/slow"]


def test_each_drain_logs_with_its_mailbox_bound(uncached_logs):
    def drain() -> int:
        structlog.get_logger().info("document_received")
        return 1

    with (
        ThreadPoolExecutor(2) as pool,
        capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs,
    ):
        drain_in_parallel(pool, {"/a": drain, "/b": drain})

    assert sorted(entry["mailbox"] for entry in logs) == ["/a", "/b"]
