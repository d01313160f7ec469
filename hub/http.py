"""HTTP for adapters: keep-alive sessions, and how a REST destination's answers are read.

Every REST delivery posts once per attempt with the envelope id as its idempotency key;
only a connection that never reached the destination is retried within the attempt.
A 5xx, 408, 425 or 429 answer is transient (the worker retries later, no sooner than
the ``Retry-After`` it was given); any other refusal is permanent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from hub.region import EndpointConfig
from hub.settings import Settings

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def http_session(url: str) -> requests.Session:
    """A session for calls to ``url``.

    requests looks up proxy variables in the environment on every call, which costs
    more than a loopback round trip; the proxies for ``url`` are resolved here, once.
    """
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(url)
    session.trust_env = False
    return session


@retry(
    retry=retry_if_exception_type(requests.ConnectionError),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.05, max=0.5),
    reraise=True,
)
def post_once(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
) -> requests.Response:
    """POST ``body``; a connection that could not be made is tried again (a few times)."""
    return session.post(url, data=body, headers=dict(headers), timeout=timeout_s)


def refusal(endpoint: str, response: requests.Response) -> DeliveryError:
    """The delivery error an unsuccessful answer means: transient or permanent."""
    reason = f"{endpoint} answered HTTP {response.status_code}: {problem_text(response)}"
    if response.status_code in RETRYABLE_STATUS:
        return TransientDeliveryError(reason, retry_after_s=retry_after_s(response))
    return PermanentDeliveryError(reason)


def problem_text(response: requests.Response) -> str:
    """The problem's title and detail when the answer is RFC 7807 JSON, else the raw text."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(problem, dict) or not ({"title", "detail"} & problem.keys()):
        return response.text[:300]
    return f"{problem.get('title', '')}: {problem.get('detail', '')}"[:300]


def retry_after_s(response: requests.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds, when given as a number."""
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


@contextlib.contextmanager
def translate_http_errors(endpoint: str) -> Iterator[None]:
    """Turn requests' errors (and unreadable JSON answers) into delivery errors."""
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


class RestOutbound:
    """An outbound kind that POSTs each envelope to its endpoint's URL, once per attempt.

    The envelope id is the ``Idempotency-Key``; the destination answers 201 with its
    record, or 200 with the record it made the first time for a repeated key. Its record
    id, under ``reference_field`` of the JSON answer, becomes the delivery's reference.
    Subclasses name the field, the headers the destination reads, and may refuse an
    envelope before it is sent (``check``).
    """

    reference_field = "id"

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        self.endpoint = endpoint
        self._timeout_s = endpoint.timeout_s or settings.delivery_timeout_s
        self._session: requests.Session | None = None

    def setup(self) -> None:
        """Open one keep-alive HTTP session for this endpoint."""
        self._session = http_session(self.endpoint.url)

    def stop(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()

    def check(self, envelope: Envelope) -> None:
        """Refuse an envelope the destination can never take (nothing by default)."""

    def headers(self, envelope: Envelope) -> dict[str, str]:
        """The request's headers: the content type and the idempotency key at least."""
        return {
            "Content-Type": envelope.content_type,
            "Idempotency-Key": str(envelope.envelope_id),
            "X-Correlation-ID": envelope.correlation_id,
            "X-Document-Type": envelope.document_type,
        }

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Post ``envelope``; return the destination's record id as the reference.

        Raises:
            TransientDeliveryError: unreachable, timed out, 5xx, 408, 425 or 429.
            PermanentDeliveryError: refused by ``check`` or by any other answer.
        """
        self.check(envelope)
        assert self._session is not None, "setup() was not called"
        with translate_http_errors(self.endpoint.name):
            response = post_once(
                self._session,
                self.endpoint.url,
                envelope.body,
                self.headers(envelope),
                self._timeout_s,
            )
            if response.status_code in (200, 201):
                reference = response.json().get(self.reference_field, "")
                return DeliveryReceipt(
                    endpoint=self.endpoint.name,
                    external_reference=str(reference) or None,
                    duplicate=response.status_code == 200,
                )
        raise refusal(self.endpoint.name, response)
