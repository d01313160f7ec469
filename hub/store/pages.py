"""Keyset pages over the store's long lists (dead letters, late receipts, quarantine).

A page is found by the last row of the page before it (its sort key and its id), never
by an OFFSET: an OFFSET makes the database walk every row it skips, and a row added or
removed in front of the reader shifts every later page, so a reader sees a row twice or
misses one. A keyset page starts strictly after the row the reader last saw, whatever
arrived since.

The cursor handed to callers is that row's sort key and id as ``<ISO 8601 time>~<id>``:
readable in a terminal (``hub dead list --after ...``), and opaque enough to a caller,
who only hands it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, or_

from hub.errors import RejectedInput

Item = TypeVar("Item")
CURSOR_SEPARATOR = "~"
# Enough for a screen or a script's batch; a caller asking for more gets this many.
MAX_PAGE = 500
DEFAULT_PAGE = 50


class BadCursor(RejectedInput):
    """A page cursor that no list of the hub handed out."""

    code = "bad-cursor"


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position of a row in a list sorted by (a moment, an id)."""

    at: datetime
    id: str

    def __str__(self) -> str:
        return f"{self.at.isoformat()}{CURSOR_SEPARATOR}{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """The cursor ``str(cursor)`` wrote.

        Raises:
            BadCursor: ``text`` is not ``<ISO 8601 time>~<id>``.
        """
        moment, separator, row_id = text.strip().partition(CURSOR_SEPARATOR)
        try:
            at = datetime.fromisoformat(moment)
        except ValueError as exc:
            raise BadCursor(f"cursor {text[:80]!r} is not one this list handed out") from exc
        if not separator or not row_id:
            raise BadCursor(f"cursor {text[:80]!r} is not one this list handed out")
        return cls(at if at.tzinfo else at.replace(tzinfo=UTC), row_id)


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    """One page of a list, and the cursor of the next page (None on the last)."""

    items: list[Item]
    next: Cursor | None


def bounded(limit: int | None) -> int:
    """``limit`` held between 1 and :data:`MAX_PAGE` (the default when None)."""
    return DEFAULT_PAGE if limit is None else max(1, min(limit, MAX_PAGE))


def page_of(rows: Sequence[Item], limit: int, cursor_of: Callable[[Item], Cursor]) -> Page[Item]:
    """A page from ``rows`` fetched with ``limit + 1``: the extra row says another page follows."""
    items = list(rows[:limit])
    more = len(rows) > limit and bool(items)
    return Page(items, cursor_of(items[-1]) if more else None)


def keyset_after(
    moment: Any, row_id: Any, cursor: Cursor | None, *, newest_first: bool
) -> ColumnElement[bool] | None:
    """The condition for rows strictly after ``cursor`` in (moment, id) order, or None.

    Written as ``moment < t OR (moment = t AND id < i)`` rather than a row-value
    comparison, which the databases' planners both turn into an index range.
    """
    if cursor is None:
        return None
    if newest_first:
        return or_(
            moment < cursor.at, and_(moment == cursor.at, row_id < _typed(cursor.id, row_id))
        )
    return or_(moment > cursor.at, and_(moment == cursor.at, row_id > _typed(cursor.id, row_id)))


def endpoint_of_office(column: Any, office: str) -> ColumnElement[bool]:
    """Endpoints named ``<system>@<office>``: an endpoint belongs to the office after its ``@``."""
    return column.like(f"%@{escape_like(office)}", escape="\\")  # type: ignore[no-any-return]


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards taken literally (office ids hold ``_``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _typed(row_id: str, column: Any) -> Any:
    # Quarantine rows have whole-number ids; compared as text, "10" would sort before "9".
    python_type = getattr(getattr(column, "type", None), "python_type", str)
    if python_type is int:
        try:
            return int(row_id)
        except ValueError as exc:
            raise BadCursor(f"cursor id {row_id[:40]!r} is not a row id of this list") from exc
    return row_id
