"""What one dashboard account may see: the whole region, or one office's share of it.

An endpoint belongs to the office after its ``@`` (``eod@146501_1`` is Warsaw's); a
message belongs to the office of its destination or of its case. A delivery, a dead
letter and an awaited receipt belong to the office of their endpoint. Every query of the
dashboard and of its JSON API takes a :class:`Scope` and adds its condition in SQL, so a
list, a count and a lookup by id all see the same share; what lies outside the scope is
answered exactly as what does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true

from hub.envelope import Address
from hub.store.pages import endpoint_of_office
from hub.store.tables import CASES, DELIVERIES, MESSAGES


@dataclass(frozen=True, slots=True)
class Scope:
    """The office an account is limited to, or None for the whole region."""

    office: str | None = None

    @property
    def region_wide(self) -> bool:
        """Whether nothing is left out."""
        return self.office is None

    def owns_endpoint(self, endpoint: str) -> bool:
        """Whether ``endpoint`` (``system@office``) is in scope."""
        return self.office is None or Address.parse(endpoint).office == self.office

    def owns_office(self, office: str) -> bool:
        """Whether the office ``office`` is in scope."""
        return self.office is None or office == self.office

    def messages(self) -> ColumnElement[bool]:
        """The condition on ``messages`` rows: destined to the office, or of one of its cases."""
        if self.office is None:
            return true()
        its_cases = select(CASES.c.id).where(CASES.c.office == self.office)
        return or_(
            MESSAGES.c.destination == self.office,
            endpoint_of_office(MESSAGES.c.destination, self.office),
            MESSAGES.c.correlation_id.in_(its_cases),
        )

    def deliveries(self, endpoint_column: Any = DELIVERIES.c.endpoint) -> ColumnElement[bool]:
        """The condition on rows naming an endpoint: the endpoint is the office's."""
        if self.office is None:
            return true()
        return endpoint_of_office(endpoint_column, self.office)
