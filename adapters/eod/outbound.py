"""Delivering documents to an office's EOD over its REST interface.

``POST {endpoint url}`` with the document as the body and the hub's ids in headers.
``Idempotency-Key`` is the envelope id (one adapter serves one endpoint), so a retry
after a lost answer registers nothing twice: the EOD answers 200 with the registration
it made the first time instead of 201.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.http import http_session
from hub.region import EndpointConfig
from hub.settings import Settings

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


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
        with _translate_http_errors(self._endpoint.name):
            response = self._post_with_retries(envelope)
        if response.status_code in (200, 201):
            answer = response.json()
            return DeliveryReceipt(
                endpoint=self._endpoint.name,
                external_reference=str(answer.get("registration_number", "")) or None,
                duplicate=response.status_code == 200,
            )
        raise _refusal(self._endpoint.name, response)

    @retry(
        retry=retry_if_exception_type(requests.ConnectionError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    )
    def _post_with_retries(self, envelope: Envelope) -> requests.Response:
        # Only connection failures are retried in-call: the request never reached the EOD.
        assert self._session is not None, "setup() was not called"
        return self._session.post(
            self._endpoint.url,
            data=envelope.body,
            headers={
                "Content-Type": envelope.content_type,
                "Idempotency-Key": str(envelope.envelope_id),
                "X-Envelope-ID": str(envelope.envelope_id),
                "X-Correlation-ID": envelope.correlation_id,
                "X-Document-Type": envelope.document_type,
                "X-Hub-Source": envelope.source,
            },
            timeout=self._timeout_s,
        )


def _refusal(endpoint: str, response: requests.Response) -> Exception:
    detail = response.text[:300]
    reason = f"{endpoint} answered HTTP {response.status_code}: {detail}"
    if response.status_code in RETRYABLE_STATUS:
        return TransientDeliveryError(reason, retry_after_s=_retry_after(response))
    return PermanentDeliveryError(reason)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


@contextlib.contextmanager
def _translate_http_errors(endpoint: str) -> Iterator[None]:
    try:
        yield
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientDeliveryError(f"{endpoint} unreachable: {exc}") from exc
    except requests.RequestException as exc:
        raise PermanentDeliveryError(f"{endpoint} request failed: {exc}") from exc
    except ValueError as exc:
        raise PermanentDeliveryError(
            f"{endpoint} answered something that is not JSON: {exc}"
        ) from exc
