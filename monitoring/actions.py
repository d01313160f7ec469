"""What operators do from the dashboard: replay dead letters, pause and resume endpoints.

Every action lands in the hub's hash-chained audit log with who did it, rather than in a
table of its own: the audit log is already the one tamper-evident record of who changed
what (the store writes a replay's ``replayed`` row, with its actor and reason, in the
replay's own transaction), and a second, unchained table would be an editable copy of
the same facts. The circuit breaker writes the ``endpoint-paused`` and ``endpoint-resumed``
rows in the transaction that changes the circuit, with the person and their role.

An office's operator acts on that office's endpoints and their dead letters only; any
other is :class:`NotFound` to them, exactly as one that does not exist, and is left as it
is. A delivery's endpoint never changes once stored, so checking it before the store's
own transaction cannot be raced into acting on another office's delivery.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.breaker import CircuitBreakers
from hub.errors import HubError
from hub.settings import Settings
from hub.store.repository import Store
from monitoring.auth import Account
from monitoring.queries import delivery_endpoint
from monitoring.scope import Scope


class NotFound(HubError):
    """No such delivery or endpoint, or none the acting account may touch."""

    code = "not-found"


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What became of one requested replay."""

    delivery_id: str
    replayed: bool
    message_id: str | None


class OperatorActions:
    """The actions of one operator, each recorded with their name and role."""

    def __init__(self, store: Store, settings: Settings, account: Account) -> None:
        self._store = store
        self._breakers = CircuitBreakers(store, settings)
        self._account = account
        self._scope = Scope(account.office)

    def replay(self, delivery_id: str, reason: str) -> ReplayOutcome:
        """Send a dead delivery again once; a delivery no longer dead is left as it is.

        Raises:
            NotFound: there is no such delivery, or it is another office's.
        """
        endpoint = delivery_endpoint(self._store, delivery_id)
        if endpoint is None or not self._scope.owns_endpoint(endpoint):
            raise NotFound(f"there is no delivery {delivery_id}")
        message_id = self._store.replay_delivery(delivery_id, self._account.name, reason)
        return ReplayOutcome(delivery_id, message_id is not None, message_id)

    def pause(self, endpoint: str, reason: str) -> None:
        """Stop attempting deliveries to ``endpoint``; the audit log records who and why.

        Raises:
            NotFound: the endpoint is another office's.
        """
        self._check(endpoint)
        self._breakers.pause(endpoint, self._account.name, reason, role=self._role)

    def resume(self, endpoint: str) -> None:
        """Attempt deliveries to ``endpoint`` again; the audit log records who.

        Raises:
            NotFound: the endpoint is another office's.
        """
        self._check(endpoint)
        self._breakers.resume(endpoint, self._account.name, role=self._role)

    def _check(self, endpoint: str) -> None:
        if not self._scope.owns_endpoint(endpoint):
            raise NotFound(f"there is no endpoint {endpoint}")

    @property
    def _role(self) -> str:
        return self._account.role.name.lower()
