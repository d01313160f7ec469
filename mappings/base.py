"""What a mapping is: a named, pure translation from one document type to another."""

from __future__ import annotations

from collections import abc
from dataclasses import dataclass
from typing import NamedTuple

XML = "application/xml"
JSON = "application/json"

#: Facts about the document that are not in its body (the envelope's headers: ePUAP
#: mailbox, submission time, KSeF number...). Plain strings, so a mapping stays pure.
Context = abc.Mapping[str, str]

#: The translation itself: source bytes and context in, target bytes out.
Translate = abc.Callable[[bytes, Context], bytes]


@dataclass(frozen=True, slots=True)
class Mapping:
    """One source → target translation, as a route step ``apply_mapping:<name>`` names it.

    Attributes:
        name: the registry key, e.g. ``pismo-ogolne-to-eod``.
        source_type: the document type it accepts: the root namespace of an XML form,
            or the ``"schema"`` member of a legacy JSON document.
        source_content_type: ``application/xml`` or ``application/json``.
        target_type: the document type it produces, in the same terms.
        target_content_type: the content type of what it produces.
        translate: the pure function doing the work.
        description: one line for the catalogue and the dashboard.
    """

    name: str
    source_type: str
    source_content_type: str
    target_type: str
    target_content_type: str
    translate: Translate
    description: str


class Translated(NamedTuple):
    """A mapping's result: what becomes the envelope's new body, content and document type."""

    body: bytes
    content_type: str
    document_type: str
