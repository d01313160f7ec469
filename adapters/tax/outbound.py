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

import requests

from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import PermanentDeliveryError
from hub.http import http_session, post_once, refusal, translate_http_errors
from hub.region import EndpointConfig
from hub.settings import Settings


def is_json(content_type: str) -> bool:
    """Whether ``content_type`` names JSON (``application/json`` or a ``+json`` type)."""
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class TaxRestOutbound:
    """The ``tax-rest`` outbound kind: one office's tax system."""

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        self._endpoint = endpoint
        self._timeout_s = endpoint.timeout_s or settings.delivery_timeout_s
        self._session: requests.Session | None = None

    def setup(self) -> None:
        """Open one keep-alive HTTP session for this endpoint."""
        self._session = http_session(self._endpoint.url)

    def stop(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Register the declaration ``envelope`` carries; its id is the delivery's reference.

        Raises:
            PermanentDeliveryError: the body is not JSON (the route did not map it), or
                the system refused the declaration (4xx other than 408/425/429).
            TransientDeliveryError: unreachable, timed out, 5xx, 429 (with Retry-After).
        """
        if not is_json(envelope.content_type):
            raise PermanentDeliveryError(
                f"{self._endpoint.name}: content type mismatch: the tax system takes "
                f"application/json, and this {envelope.content_type} document of type "
                f"{envelope.document_type!r} was not mapped to a tax declaration by its route"
            )
        assert self._session is not None, "setup() was not called"
        with translate_http_errors(self._endpoint.name):
            response = post_once(
                self._session,
                self._endpoint.url,
                envelope.body,
                _headers(envelope),
                self._timeout_s,
            )
            if response.status_code in (200, 201):
                answer = response.json()
                return DeliveryReceipt(
                    endpoint=self._endpoint.name,
                    external_reference=str(answer.get("declaration_id", "")) or None,
                    duplicate=response.status_code == 200,
                )
        raise refusal(self._endpoint.name, response)


def _headers(envelope: Envelope) -> dict[str, str]:
    return {
        "Content-Type": envelope.content_type,
        "Accept": "application/json, application/problem+json",
        "Idempotency-Key": str(envelope.envelope_id),
        "X-Correlation-ID": envelope.correlation_id,
        "X-Office": envelope.destination.office,
        "X-Document-Type": envelope.document_type,
    }
