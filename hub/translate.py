"""The ``apply_mapping:<name>`` route steps: a document translated for its destination.

The translations themselves live in ``mappings/`` (pure, nothing of the hub); this is the
boundary where their errors become the hub's ``MappingError`` (dead letter) and where
the envelope takes on the translated body, content type and document type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import mappings
from hub.envelope import Envelope
from hub.errors import MappingError

Step = Callable[[Envelope], Envelope]
STEP_PREFIX = "apply_mapping:"


def mapping_steps() -> dict[str, Step]:
    """One step per known mapping, named ``apply_mapping:<mapping name>``."""
    return {f"{STEP_PREFIX}{name}": apply_mapping(name) for name in mappings.MAPPINGS}


def apply_mapping(name: str) -> Step:
    """A step that translates the envelope's document with the mapping ``name``."""

    def translate(envelope: Envelope) -> Envelope:
        context = {**envelope.headers, "envelope-id": str(envelope.envelope_id)}
        try:
            translated = mappings.apply(name, envelope.body, context)
        except mappings.MappingError as exc:
            where = f" at {exc.path}" if exc.path else ""
            raise MappingError(f"{name}: {exc.reason}{where}") from exc
        return dataclasses.replace(
            envelope,
            body=translated.body,
            content_type=translated.content_type,
            document_type=translated.document_type,
        ).with_headers(**{"mapped-by": name, "mapped-from": envelope.document_type})

    return translate
