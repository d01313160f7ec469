"""Delivering documents to an office's EOD over its REST interface.

``POST {endpoint url}`` with the document as the body and the hub's ids in headers.
``Idempotency-Key`` is the envelope id (one adapter serves one endpoint), so a retry
after a lost answer registers nothing twice: the EOD answers 200 with the registration
it made the first time instead of 201.
"""

from __future__ import annotations

from hub.envelope import Envelope
from hub.http import RestOutbound


class EodRestOutbound(RestOutbound):
    """The ``eod-rest`` outbound kind: the registration number is the reference."""

    reference_field = "registration_number"

    def headers(self, envelope: Envelope) -> dict[str, str]:
        """The hub's ids, and where the document came from."""
        return {
            **super().headers(envelope),
            "X-Envelope-ID": str(envelope.envelope_id),
            "X-Hub-Source": envelope.source,
        }
