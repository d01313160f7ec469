"""Pure document translations, one module (or XSLT file) per source → target.

Mappings import lxml only: no I/O at run time (schemas and stylesheets are compiled once
at import), no settings, no logging, nothing of the hub. Each is tested by golden files
(``tests/fixtures/mappings/<name>/<case>/``).

The routing layer runs a route step ``apply_mapping:<name>`` as::

    translated = mappings.apply(name, envelope.body, envelope.headers)
    envelope = replace(envelope, body=translated.body, content_type=translated.content_type,
                       document_type=translated.document_type)

translating ``mappings.MappingError`` (which carries ``reason`` and ``path``) into the hub's
own ``MappingError`` at that boundary. ``MAPPINGS`` lists every name, so a route naming an
unknown mapping can be refused when routes are loaded. See ``mappings/README.md`` for the
document formats.
"""

from __future__ import annotations

from mappings import alcohol_permit, invoices, pismo_ogolne, property_tax, road_lane
from mappings.base import Context, Mapping, Translated
from mappings.errors import MappingError

__all__ = ["MAPPINGS", "Context", "Mapping", "MappingError", "Translated", "apply"]

MAPPINGS: dict[str, Mapping] = {
    mapping.name: mapping
    for module in (pismo_ogolne, property_tax, alcohol_permit, road_lane, invoices)
    for mapping in module.MAPPINGS
}


def apply(name: str, body: bytes, context: Context | None = None) -> Translated:
    """Translate ``body`` with the mapping called ``name``.

    Args:
        name: a key of ``MAPPINGS``.
        body: the source document.
        context: facts from the envelope the mapping may need (its headers); none by default.

    Returns:
        The target document with its content type and document type.

    Raises:
        KeyError: no mapping has that name (a configuration error, caught when routes load).
        MappingError: the document cannot be translated; ``path`` says where.
    """
    mapping = MAPPINGS[name]
    target = mapping.translate(body, context or {})
    return Translated(target, mapping.target_content_type, mapping.target_type)
