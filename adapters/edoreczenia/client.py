"""An HTTP client of the e-Doręczenia User Agent API (UA API 3.0.8) for the hub's adapters.

Authentication is OAuth2 **client credentials** (``grant_type=client_credentials``, the
client id and secret in HTTP Basic): the hub is a system, not a person at a browser. The
contract declares the ``authorizationCode`` flow, and its description says systems of
the EZD class authenticate to the authorization server with an X.509 certificate (mutual
TLS); client credentials is what a system-to-system deployment of either reduces to.
One token serves every call until shortly before it expires; a 401 renews it once and
repeats the call once.

Failures become the hub's errors at one boundary per public method
(:func:`_translate_errors`): 429 (with ``Retry-After``), 408, 5xx, timeouts and
unreachable hosts are ``TransientDeliveryError``; any other refusal, and an answer that
breaks the contract's shapes, is ``PermanentDeliveryError``. Invalid addresses are the
caller's input: ``SchemaViolation``.

Sending is asynchronous in the contract: ``POST /{eDeliveryAddress}/messages`` answers
``202`` with a ``messageTaskId``, and the message ids appear on the task
(``GET .../messages/tasks/{messageTaskId}``) once it is FINISHED.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from adapters.edoreczenia.contract import (
    INBOX_LABEL,
    AnswerShapeError,
    Evidence,
    EvidenceEntry,
    MessageSummary,
    ReceivedMessage,
    TaskOutcome,
    attachment_content,
    evidence_entries,
    json_patch_add_label,
    message_request,
    message_summaries,
    message_task_id,
    parse_evidence_entry,
    received_message,
    task_finished,
    task_outcome,
    validate_address,
    validate_recipients,
)
from adapters.edoreczenia.tokens import AccessToken, TokenCache
from hub.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from hub.http import RETRYABLE_STATUS, http_session
from hub.logging import get_logger

log = get_logger(__name__)

#: The scopes of the contract's ``oAuthUserAgent`` scheme the hub's calls need.
DEFAULT_SCOPES = "read_messages write_messages read_settings write_settings"
PAGE_SIZE = 100
DEFAULT_TASK_WAIT_S = 5.0
TASK_POLL_INTERVAL_S = 0.05
#: The options every endpoint or channel using this client must set.
CLIENT_OPTIONS = ("token_url", "client_id", "client_secret")
# RFC 6749 makes expires_in only RECOMMENDED; without it, assume a short life.
DEFAULT_EXPIRES_IN_S = 60.0


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What sending produced: the task, and the message ids once the task finished."""

    message_task_id: str
    message_ids: tuple[str, ...]

    @property
    def reference(self) -> str:
        """The message id(s), or ``messageTaskId:<id>`` while the task has not finished."""
        if self.message_ids:
            return ",".join(self.message_ids)
        return f"messageTaskId:{self.message_task_id}"


class _NotSent(Exception):
    """No connection was made, so the request never left: safe to repeat, even a POST."""


class EDoreczeniaClient:
    """Calls the UA API of one e-Doręczenia service for any number of mailboxes (skrzynki)."""

    def __init__(
        self,
        base_url: str,
        token_url: str,
        *,
        client_id: str,
        client_secret: str,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        scopes: str = DEFAULT_SCOPES,
        task_wait_s: float = DEFAULT_TASK_WAIT_S,
    ) -> None:
        """Prepare a client; no connection is made until the first call.

        Args:
            base_url: the UA API root, including the contract's ``/api/v1``.
            token_url: the OAuth2 token endpoint.
            client_id: the hub's OAuth2 client id.
            client_secret: its secret.
            timeout_s: connect and read timeout of each HTTP call.
            clock: monotonic seconds, for token expiry and task waiting.
            scopes: the scopes asked for with each token.
            task_wait_s: how long :meth:`send_message` waits for the sending task.
        """
        self._base_url = base_url.rstrip("/")
        self._token_url = token_url
        self._credentials = (client_id, client_secret)
        self._timeout_s = timeout_s
        self._clock = clock
        self._scopes = scopes
        self._task_wait_s = task_wait_s
        self._tokens = TokenCache(self._fetch_token, clock)
        # requests sessions are not documented as thread-safe; the poller uses threads.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def close(self) -> None:
        """Close every HTTP session this client opened."""
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def send_message(
        self,
        sender_address: str,
        recipients: Sequence[str],
        *,
        subject: str,
        body_bytes: bytes,
        filename: str,
        content_type: str,
        additional_data: Mapping[str, str] | None = None,
    ) -> SentMessage:
        """Send one document as the attachment of a message to 1-15 addressees.

        Args:
            sender_address: the office's ADE, the mailbox the message leaves from.
            recipients: the addressees' ADEs.
            subject: the message's title.
            body_bytes: the document.
            filename: its file name.
            content_type: its MIME type.
            additional_data: key → value pairs carried in ``messageMetadata.additionalData``.

        Returns:
            The task and, once it finished within ``task_wait_s``, the message ids. A task
            that cannot be read after the service accepted the message is not an error:
            sending again would deliver twice.

        Raises:
            SchemaViolation: an address is malformed, or there are too many addressees.
            TransientDeliveryError: the service is unavailable or throttles (429).
            PermanentDeliveryError: the service refused the message or an addressee.
        """
        task_id = self.submit_message(
            sender_address,
            recipients,
            subject=subject,
            body_bytes=body_bytes,
            filename=filename,
            content_type=content_type,
            additional_data=additional_data,
        )
        try:
            outcome = self.message_task(sender_address, task_id)
        except TransientDeliveryError as exc:
            log.warning("edoreczenia_task_unreadable", message_task_id=task_id, reason=exc.reason)
            return SentMessage(task_id, ())
        if outcome is None:
            log.warning("edoreczenia_task_pending", message_task_id=task_id)
            return SentMessage(task_id, ())
        if outcome.refusals:
            raise PermanentDeliveryError(
                f"e-Doręczenia refused {len(outcome.refusals)} addressee(s): "
                f"{'; '.join(outcome.refusals)}; sent to the others as {outcome.message_ids}"
            )
        return SentMessage(task_id, outcome.message_ids)

    def submit_message(
        self,
        sender_address: str,
        recipients: Sequence[str],
        *,
        subject: str,
        body_bytes: bytes,
        filename: str,
        content_type: str,
        additional_data: Mapping[str, str] | None = None,
    ) -> str:
        """``POST /{eDeliveryAddress}/messages``; return its ``messageTaskId``.

        Arguments and errors as for :meth:`send_message`.
        """
        sender = validate_address(sender_address, role="sender")
        body = message_request(
            sender=sender,
            recipients=validate_recipients(recipients),
            subject=subject,
            body=body_bytes,
            filename=filename,
            content_type=content_type,
            file_id=str(uuid.uuid4()),
            additional_data=additional_data,
        )
        with _translate_errors("send message"):
            answer = self._call("POST", _path(sender, "messages"), expected=(202,), json=body)
            return message_task_id(answer.json())

    def message_task(self, address: str, task_id: str) -> TaskOutcome | None:
        """Wait up to ``task_wait_s`` for a sending task; its outcome, or None if still pending.

        Raises:
            TransientDeliveryError, PermanentDeliveryError: as for every call.
        """
        deadline = self._clock() + self._task_wait_s
        with _translate_errors("read message task"):
            while not self._task_finished(address, task_id):
                if self._clock() >= deadline:
                    return None
                time.sleep(TASK_POLL_INTERVAL_S)
            return task_outcome(
                self._call("GET", _path(address, "messages", "tasks", task_id)).json()
            )

    def list_messages(self, address: str, *, label: str = INBOX_LABEL) -> list[MessageSummary]:
        """Every message of ``address`` with ``label`` (a folder), page by page, each id once.

        Raises:
            TransientDeliveryError, PermanentDeliveryError: as for every call.
        """
        found: dict[str, MessageSummary] = {}
        offset = 0
        with _translate_errors("list messages"):
            while True:
                page, total = self._messages_page(address, label, offset)
                found.update((summary.message_id, summary) for summary in page)
                # A message may be listed twice within a page (the simulator's list_twice)
                # or across pages (new mail shifting the offsets): step by distinct ids,
                # so nothing is skipped and every page still moves forward.
                offset += len({summary.message_id for summary in page})
                if not page or offset >= total:
                    return list(found.values())

    def get_message(self, address: str, message_id: str) -> ReceivedMessage:
        """Read one message in ``full`` format (metadata and the list of attachments).

        Reading in full format marks the message opened (odczytana) at the service.

        Raises:
            TransientDeliveryError, PermanentDeliveryError: as for every call.
        """
        with _translate_errors("read message"):
            answer = self._call(
                "GET", _path(address, "messages", message_id), params={"format": "full"}
            )
            return received_message(answer.json())

    def download_attachment(self, address: str, message_id: str, attachment_id: str) -> bytes:
        """The content of one attachment (załącznik), checked against its SHA-3 hash.

        Raises:
            TransientDeliveryError, PermanentDeliveryError: as for every call.
        """
        path = _path(address, "messages", message_id, "attachments", attachment_id)
        with _translate_errors("download attachment"):
            return attachment_content(self._call("GET", path).json())

    def evidences(self, address: str, message_id: str) -> list[Evidence]:
        """The evidences (dowody) of a message, oldest first, each with its document.

        The list (``GET .../messages/{messageId}/evidences``) names them; each document
        comes from ``GET .../evidences/purde/{evidenceId}`` (PURDE: the public registered
        electronic delivery service).

        Raises:
            TransientDeliveryError, PermanentDeliveryError: as for every call.
        """
        with _translate_errors("read evidences"):
            listed = self._call(
                "GET",
                _path(address, "messages", message_id, "evidences"),
                params={"sortColumn": "eventDate", "sortDirection": "asc"},
            )
            return [
                entry.with_document(self._evidence_document(address, entry.evidence_id))
                for entry in evidence_entries(listed.json())
            ]

    def evidence_entry(self, address: str, evidence_id: str) -> EvidenceEntry:
        """One evidence by its id, without its document (``GET .../messages/evidences/{id}``).

        A webhook's ``NewEvidence`` notification names the evidence, not its message:
        this is how the message is found.

        Raises:
            TransientDeliveryError: as for every call.
            PermanentDeliveryError: as for every call, or the answer lists no such evidence.
        """
        path = _path(address, "messages", "evidences", evidence_id)
        with _translate_errors("read evidence"):
            return listed_evidence(self._call("GET", path).json(), evidence_id)

    def subscribe(
        self, address: str, callback_url: str, *, evidence_callback_url: str | None = None
    ) -> str:
        """Ask to be notified at ``callback_url`` of each new message; return the subscription id.

        Raises:
            TransientDeliveryError, PermanentDeliveryError: as for every call.
        """
        body = {"messageCallbackUrl": callback_url}
        if evidence_callback_url:
            body["evidenceCallbackUrl"] = evidence_callback_url
        with _translate_errors("subscribe"):
            answer = self._call("PUT", _path(address, "message_subscriptions"), json=body).json()
            subscription_id = answer.get("subscriptionId") if isinstance(answer, dict) else None
            if not isinstance(subscription_id, str) or not subscription_id:
                raise PermanentDeliveryError("the subscription answer carries no subscriptionId")
            return subscription_id

    def add_label(self, address: str, message_id: str, label: str) -> None:
        """Add ``label`` to a message (``PATCH .../message_control_data``).

        Raises:
            TransientDeliveryError, PermanentDeliveryError: as for every call.
        """
        path = _path(address, "messages", message_id, "message_control_data")
        with _translate_errors("label message"):
            self._call("PATCH", path, json=json_patch_add_label(label))

    def _messages_page(
        self, address: str, label: str, offset: int
    ) -> tuple[list[MessageSummary], int]:
        params = {"label": label, "format": "metadata", "offset": offset, "limit": PAGE_SIZE}
        return message_summaries(
            self._call("GET", _path(address, "messages"), params=params).json()
        )

    def _task_finished(self, address: str, task_id: str) -> bool:
        path = _path(address, "messages", "tasks", task_id, "status")
        return task_finished(self._call("GET", path).json())

    def _evidence_document(self, address: str, evidence_id: str) -> bytes:
        path = _path(address, "evidences", "purde", evidence_id)
        return self._call("GET", path, accept="application/octet-stream").content

    def _call(
        self,
        method: str,
        path: str,
        *,
        expected: tuple[int, ...] = (200,),
        accept: str = "application/json",
        **kwargs: Any,
    ) -> requests.Response:
        what = f"{method} {path}"
        token = self._tokens.current()
        response = self._send(method, self._base_url + path, token, accept, **kwargs)
        if response.status_code == 401:
            # The token expired early or was revoked: one fresh token, one more try.
            log.info("edoreczenia_token_rejected", call=what)
            renewed = self._tokens.renew(token)
            response = self._send(method, self._base_url + path, renewed, accept, **kwargs)
        if response.status_code not in expected:
            raise refusal(what, response)
        return response

    def _send(
        self, method: str, url: str, token: str, accept: str, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": accept}
        return self._request_with_retries(method, url, headers=headers, **kwargs)

    def _fetch_token(self) -> AccessToken:
        response = self._request_with_retries(
            "POST",
            self._token_url,
            data={"grant_type": "client_credentials", "scope": self._scopes},
            auth=self._credentials,
        )
        if response.status_code != 200:
            raise refusal("token request", response)
        return access_token(response.json())

    @retry(
        retry=retry_if_exception_type(_NotSent),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    )
    def _request_with_retries(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        # Only failures to connect are repeated in-call: the request never reached the
        # service, so even a POST cannot have sent a message. Anything later is the hub's
        # retry policy to decide, across attempts.
        try:
            return self._session.request(method, url, timeout=self._timeout_s, **kwargs)
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise _NotSent(str(exc)) from exc
            raise

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = http_session(self._base_url)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session


def required_options(
    owner: str, options: Mapping[str, Any], required: Sequence[str] = CLIENT_OPTIONS
) -> dict[str, str]:
    """An endpoint's or channel's options as strings, checked for the ones it cannot do without.

    Raises:
        ConfigurationError: naming ``owner`` and the missing options.
    """
    missing = [key for key in required if not options.get(key)]
    if missing:
        raise ConfigurationError(f"{owner} needs options {', '.join(missing)}")
    return {key: str(value) for key, value in options.items()}


def listed_evidence(answer: Any, evidence_id: str) -> EvidenceEntry:
    """The entry for ``evidence_id`` in an answer listing ``Evidence`` objects.

    Raises:
        AnswerShapeError: the answer does not list that evidence, or an entry is malformed.
    """
    items = answer if isinstance(answer, list) else [answer]
    for entry in (parse_evidence_entry(item) for item in items):
        if entry.evidence_id == evidence_id:
            return entry
    raise AnswerShapeError(f"the answer does not list evidence {evidence_id}")


def access_token(answer: Any) -> AccessToken:
    """Parse a token endpoint's JSON answer (RFC 6749 §5.1).

    Raises:
        PermanentDeliveryError: no ``access_token`` in it.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise PermanentDeliveryError("the token endpoint answered without an access_token")
    expires_in = answer.get("expires_in", DEFAULT_EXPIRES_IN_S)
    return AccessToken(answer["access_token"], float(expires_in))


def refusal(
    what: str, response: requests.Response
) -> TransientDeliveryError | PermanentDeliveryError:
    """The hub's error for an unexpected HTTP status: transient if worth retrying later."""
    reason = f"e-Doręczenia {what} answered HTTP {response.status_code}: {_error_detail(response)}"
    if response.status_code in RETRYABLE_STATUS:
        retry_after = retry_after_seconds(response.headers.get("Retry-After", ""))
        return TransientDeliveryError(reason, retry_after_s=retry_after)
    return PermanentDeliveryError(reason)


def retry_after_seconds(value: str, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns:
        The seconds (never negative), or None when the header is absent or unreadable.
    """
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (moment - now).total_seconds())


def _error_detail(response: requests.Response) -> str:
    # The contract's error answer is a list of ErrorInfo {error, error_description};
    # OAuth2 errors are one object of the same two fields.
    try:
        answer = response.json()
    except ValueError:
        return response.text[:300]
    items = answer if isinstance(answer, list) else [answer]
    details = [
        f"{item.get('error', '')}: {item.get('error_description', '')}"
        for item in items
        if isinstance(item, dict)
    ]
    return "; ".join(details)[:300] or response.text[:300]


def _path(*segments: str) -> str:
    # Addresses keep their colon (AE:PL-...), which is legal in a path segment.
    return "".join("/" + quote(segment, safe=":") for segment in segments)


def _never_connected(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else cause
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


@contextlib.contextmanager
def _translate_errors(what: str) -> Iterator[None]:
    try:
        yield
    except _NotSent as exc:
        raise TransientDeliveryError(f"e-Doręczenia unreachable ({what}): {exc}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientDeliveryError(f"e-Doręczenia {what} failed in transit: {exc}") from exc
    except requests.RequestException as exc:
        raise PermanentDeliveryError(f"e-Doręczenia {what} request failed: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        # JSON that does not parse, or parses into the wrong shape (AnswerShapeError).
        raise PermanentDeliveryError(
            f"e-Doręczenia {what} answered outside the contract: {exc}"
        ) from exc
