"""Route steps that sign: which documents are signed is routing policy, so signing is a step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hub.envelope import Envelope
from hub.signing.keystore import Keystore
from hub.signing.xades import sign_document

Step = Callable[[Envelope], Envelope]


def sign_with_office(keystore: Keystore) -> Step:
    """A step that adds the XAdES-BES signature of the office the envelope is routed for."""

    def sign(envelope: Envelope) -> Envelope:
        identity = keystore.identity(envelope.destination.office)
        signed = sign_document(envelope.body, identity)
        return dataclasses.replace(envelope, body=signed).with_headers(signed_by=identity.subject)

    return sign
