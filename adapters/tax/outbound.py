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
        with _translate_http_errors(self._endpoint.name):
            response = self._post_with_retries(envelope)
            if response.status_code in (200, 201):
                answer = response.json()
                return DeliveryReceipt(
                    endpoint=self._endpoint.name,
                    external_reference=str(answer.get("declaration_id", "")) or None,
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
        # Only connection failures are retried in-call: the request never reached the system.
        assert self._session is not None, "setup() was not called"
        return self._session.post(
            self._endpoint.url,
            data=envelope.body,
            headers={
                "Content-Type": envelope.content_type,
                "Accept": "application/json, application/problem+json",
                "Idempotency-Key": str(envelope.envelope_id),
                "X-Correlation-ID": envelope.correlation_id,
                "X-Office": envelope.destination.office,
                "X-Document-Type": envelope.document_type,
            },
            timeout=self._timeout_s,
        )


def _refusal(endpoint: str, response: requests.Response) -> Exception:
    reason = f"{endpoint} answered HTTP {response.status_code}: {_problem_text(response)}"
    if response.status_code in RETRYABLE_STATUS:
        return TransientDeliveryError(reason, retry_after_s=_retry_after(response))
    return PermanentDeliveryError(reason)


def _problem_text(response: requests.Response) -> str:
    """The problem's title and detail when the answer is RFC 7807 JSON, else the raw text."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(problem, dict):
        return response.text[:300]
    return f"{problem.get('title', '')}: {problem.get('detail', '')}"[:300]


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
