"""Delivering documents to an office's EOD over its REST interface.

``POST {endpoint url}`` with the document as the body and the hub's ids in headers.
``Idempotency-Key`` is the envelope id (one adapter serves one endpoint), so a retry
after a lost answer registers nothing twice: the EOD answers 200 with the registration
it made the first time instead of 201.
"""

from __future__ import annotations

import requests

from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.http import http_session, post_once, refusal, translate_http_errors
from hub.region import EndpointConfig
from hub.settings import Settings


class EodRestOutbound:
    """The ``eod-rest`` outbound kind."""

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
        """Register ``envelope`` in the EOD; return the registration number as the reference.

        Raises:
            TransientDeliveryError: unreachable, timed out, 5xx or 429 (with Retry-After).
            PermanentDeliveryError: any other refusal (the EOD will never take it as sent).
        """
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
                    external_reference=str(answer.get("registration_number", "")) or None,
                    duplicate=response.status_code == 200,
                )
        raise refusal(self._endpoint.name, response)


def _headers(envelope: Envelope) -> dict[str, str]:
    return {
        "Content-Type": envelope.content_type,
        "Idempotency-Key": str(envelope.envelope_id),
        "X-Envelope-ID": str(envelope.envelope_id),
        "X-Correlation-ID": envelope.correlation_id,
        "X-Document-Type": envelope.document_type,
        "X-Hub-Source": envelope.source,
    }
