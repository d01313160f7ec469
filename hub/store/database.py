"""Engines for SQLite (the embedded default) and PostgreSQL, and the error boundary for both."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import sqlalchemy.exc
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from hub.errors import StoreUnavailable

SQLITE_BUSY_TIMEOUT_S = 60
READ_ONLY_OPTION = "hub_read_only"
SQLITE_FILE_MODE = 0o600


def create_store_engine(database_url: str) -> Engine:
    """An engine tuned for the hub's many short write transactions."""
    if database_url.startswith("sqlite"):
        return _sqlite_engine(database_url)
    # No pre-ping: it costs a round trip per transaction. A connection that died is
    # invalidated on first use, the unit of work fails as StoreUnavailable and is retried.
    return create_engine(database_url, pool_size=8, max_overflow=8, pool_recycle=3600)


def _sqlite_engine(database_url: str) -> Engine:
    _create_private_file(make_url(database_url).database)
    engine = create_engine(database_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE can be issued:
        # several hub processes write at once, and a deferred transaction that later
        # needs the write lock fails with "database is locked" instead of waiting.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # Readers must not take the write lock from the hub's writers.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _create_private_file(database: str | None) -> None:
    """Create a new SQLite database file 0600 before SQLite opens it.

    SQLite would create it with the process's umask (often world-readable), and the
    store holds every document and receipt. Its -wal and -shm files take the mode of
    the database file. An existing file is left as it is.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        descriptor = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE)
    except (FileExistsError, FileNotFoundError):
        return  # kept as it is, or no folder: SQLite itself says what is wrong
    os.close(descriptor)


@contextlib.contextmanager
def translate_store_errors() -> Iterator[None]:
    """Turn lost connections, locks and timeouts into :class:`StoreUnavailable`."""
    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        raise StoreUnavailable(f"database unavailable: {exc.orig or exc}") from exc
    except sqlalchemy.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"database connection lost: {exc.orig or exc}") from exc
        raise
