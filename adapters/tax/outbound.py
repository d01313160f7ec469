"""Registering tax declarations in an office's tax system over REST/JSON.

``POST {endpoint url}`` (e.g. ``https://podatki.example.gov.pl/api/v1/declarations``)
with the declaration as JSON and ``Idempotency-Key`` = the envelope id, so a retry
after a lost answer registers nothing twice: the system answers 200 with the
declaration it registered the first time instead of 201.

The tax system takes JSON only. A document that reaches this adapter as anything else
(an ePUAP form in XML, say) was not mapped by its route, and sending it could never
succeed: it is refused for good, with a reason that says so, and never sent.

Outcomes: 200/201 → delivered, the ``declaration_id`` as reference; 408, 425, 429 and
5xx (``Retry-After`` honoured), refused connections and timeouts → retried; any other
answer → dead letter with the problem's detail.
"""

from __future__ import annotations

from hub.envelope import Envelope
from hub.errors import PermanentDeliveryError
from hub.http import RestOutbound


def is_json(content_type: str) -> bool:
    """Whether ``content_type`` names JSON (``application/json`` or a ``+json`` type)."""
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class TaxRestOutbound(RestOutbound):
    """The ``tax-rest`` outbound kind: one office's tax system."""

    reference_field = "declaration_id"

    def check(self, envelope: Envelope) -> None:
        """Refuse, for good, a document the route did not map into a declaration."""
        if not is_json(envelope.content_type):
            raise PermanentDeliveryError(
                f"{self.endpoint.name}: content type mismatch: the tax system takes "
                f"application/json, and this {envelope.content_type} document of type "
                f"{envelope.document_type!r} was not mapped to a tax declaration by its route"
            )

    def headers(self, envelope: Envelope) -> dict[str, str]:
        """JSON in, JSON or a problem out, and the office the declaration is filed with."""
        return {
            **super().headers(envelope),
            "Accept": "application/json, application/problem+json",
            "X-Office": envelope.destination.office,
        }
