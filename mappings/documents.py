"""Reading and writing documents safely, and asking them for fields with a path on failure.

Mappings import nothing of the hub, so they carry their own safe parser: no DTDs, no
entities, no network, bounded size and depth, DOCTYPE refused. Every failure is a
``MappingError`` naming where in the document it happened.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from mappings.errors import MappingError

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 200

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
XSLT_DIR = Path(__file__).resolve().parent / "xslt"

_EXPECTED_ONE = re.compile(r"Missing child element\(s\)\. Expected is \( (\{[^}]*\})?(\w+) \)")


def safe_parser() -> etree.XMLParser:
    """A parser that never expands entities, loads DTDs or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )


def parse_xml(body: bytes, *, namespace: str, root: str) -> etree._Element:
    """Parse ``body`` and check that its root is ``{namespace}root``.

    Raises:
        MappingError: too large, not well-formed, a DOCTYPE, too deep, or another form.
    """
    if len(body) > MAX_DOCUMENT_BYTES:
        raise MappingError(f"document of {len(body)} bytes exceeds {MAX_DOCUMENT_BYTES}")
    try:
        element = etree.fromstring(body, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise MappingError(f"not well-formed XML: {exc}") from exc
    docinfo: Any = element.getroottree().docinfo
    if docinfo.doctype:
        # A DOCTYPE is how entity-expansion and external-entity attacks arrive.
        raise MappingError("documents with a DOCTYPE are refused")
    _check_depth(element)
    expected = f"{{{namespace}}}{root}"
    if element.tag != expected:
        raise MappingError(f"expected root element {expected}, found {element.tag}", "/")
    return element


def parse_json(body: bytes, *, schema: str) -> dict[str, Any]:
    """Parse ``body`` as a JSON object whose ``"schema"`` member is ``schema``.

    Numbers with a fraction become ``Decimal``: money is never a float here.

    Raises:
        MappingError: too large, not JSON, not an object, or another document type.
    """
    if len(body) > MAX_DOCUMENT_BYTES:
        raise MappingError(f"document of {len(body)} bytes exceeds {MAX_DOCUMENT_BYTES}")
    try:
        value = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MappingError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MappingError("expected a JSON object", "$")
    if value.get("schema") != schema:
        raise MappingError(f"expected schema {schema!r}, found {value.get('schema')!r}", "$.schema")
    return value


def serialize_xml(root: etree._Element) -> bytes:
    """The document as UTF-8 bytes with an XML declaration."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def serialize_json(value: Mapping[str, Any]) -> bytes:
    """The object as UTF-8 JSON, Polish letters kept readable, decimals as strings."""
    return (json.dumps(value, ensure_ascii=False, indent=2, default=_json_default) + "\n").encode()


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _check_depth(root: etree._Element) -> None:
    depth = 0
    for event, _element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > MAX_DEPTH:
            raise MappingError(f"document nests deeper than {MAX_DEPTH} levels")


# --- schemas and stylesheets, loaded once at import by the mapping modules -------------


class _LocalResolver(etree.Resolver):
    """Resolves absolute schema URLs to local files; anything else stays unresolved."""

    def __init__(self, locations: Mapping[str, Path]) -> None:
        super().__init__()
        self._locations = dict(locations)

    # lxml calls resolve() with a context argument and offers resolve_filename(); the
    # lxml-stubs know neither.
    def resolve(self, system_url: str, public_id: str, context: object) -> Any:  # type: ignore[override]
        local = self._locations.get(system_url)
        if local is None:
            return None
        return self.resolve_filename(str(local), context)  # type: ignore[attr-defined]


class Schema:
    """A compiled XSD whose violations become ``MappingError`` with a readable path."""

    def __init__(self, path: Path, locations: Mapping[str, Path] | None = None) -> None:
        parser = safe_parser()
        # no_network stays on: a URL not in ``locations`` fails instead of being fetched.
        parser.resolvers.add(_LocalResolver(locations or {}))
        self._schema = etree.XMLSchema(etree.parse(str(path), parser))
        # An XMLSchema keeps the last run's error log on itself; one validation at a time.
        self._lock = threading.Lock()

    def validate(self, root: etree._Element) -> None:
        """Check ``root`` against the schema.

        Raises:
            MappingError: the first violation, at the offending element's path.
        """
        with self._lock:
            if self._schema.validate(root):
                return
            # lxml-stubs declare the error log opaque; it is a sequence of log entries.
            errors: Any = self._schema.error_log
            error = errors[0]
            reason, xpath = error.message, error.path
        raise MappingError(reason, _readable_path(root, xpath, reason))


def _readable_path(root: etree._Element, xpath: str | None, reason: str) -> str:
    """Turn libxml2's ``/*/*[2]`` into ``/Root/Child[2]``, adding a single missing child."""
    if not xpath:
        return ""
    namespaces = {prefix: uri for prefix, uri in root.nsmap.items() if prefix}
    try:
        found = root.getroottree().xpath(xpath, namespaces=namespaces)
    except etree.XPathError:
        return xpath
    if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], etree._Element):
        return xpath
    path = element_path(found[0])
    missing = _EXPECTED_ONE.search(reason)
    return f"{path}/{missing.group(2)}" if missing else path


def load_xslt(name: str) -> etree.XSLT:
    """Compile ``xslt/<name>`` with every file, network and write access denied."""
    document = etree.parse(str(XSLT_DIR / name), safe_parser())
    denied = etree.XSLTAccessControl.DENY_ALL  # type: ignore[attr-defined]  # not in lxml-stubs
    return etree.XSLT(document, access_control=denied)


def transform(stylesheet: etree.XSLT, root: etree._Element) -> etree._Element:
    """Apply ``stylesheet`` to ``root``.

    Raises:
        MappingError: the stylesheet failed or produced no document element.
    """
    try:
        result = stylesheet(root)
    except etree.XSLTApplyError as exc:
        raise MappingError(f"transformation failed: {exc}") from exc
    output = result.getroot()
    if output is None:
        raise MappingError("transformation produced no document")
    return output


# --- fields with paths ------------------------------------------------------------------


def element_path(element: etree._Element) -> str:
    """``/Root/Child[2]/Leaf``: local names, an index only where siblings share the name."""
    steps = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [sibling for sibling in parent if sibling.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


def child_path(element: etree._Element, relative: str) -> str:
    """The readable path of a (possibly missing) child at the prefixed ``relative`` path."""
    local = "/".join(step.split(":")[-1] for step in relative.split("/"))
    return f"{element_path(element)}/{local}"


def required(element: etree._Element, relative: str, ns: Mapping[str, str]) -> etree._Element:
    """The child at ``relative`` (prefixed names).

    Raises:
        MappingError: it is missing, with the path it should have had.
    """
    found = element.find(relative, namespaces=ns)
    if found is None:
        raise MappingError("required element is missing", child_path(element, relative))
    return found


def required_text(element: etree._Element, relative: str, ns: Mapping[str, str]) -> str:
    """The stripped, non-empty text of the child at ``relative``.

    Raises:
        MappingError: the child is missing or empty.
    """
    text = (required(element, relative, ns).text or "").strip()
    if not text:
        raise MappingError("required element is empty", child_path(element, relative))
    return text


def optional_text(element: etree._Element, relative: str, ns: Mapping[str, str]) -> str | None:
    """The stripped text of the child at ``relative``, or None if absent or empty."""
    found = element.find(relative, namespaces=ns)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def decimal_text(element: etree._Element, relative: str, ns: Mapping[str, str]) -> Decimal:
    """The child's text as a Decimal.

    Raises:
        MappingError: missing, empty or not a number.
    """
    text = required_text(element, relative, ns)
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise MappingError(f"{text!r} is not a number", child_path(element, relative)) from exc


def date_text(element: etree._Element, relative: str, ns: Mapping[str, str]) -> date:
    """The child's text as an ISO date.

    Raises:
        MappingError: missing, empty or not YYYY-MM-DD.
    """
    text = required_text(element, relative, ns)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise MappingError(
            f"{text!r} is not a date (YYYY-MM-DD)", child_path(element, relative)
        ) from exc


def required_attribute(element: etree._Element, name: str) -> str:
    """The attribute's whitespace-normalised, non-empty value.

    Raises:
        MappingError: it is missing or empty, at ``.../@name``.
    """
    value = " ".join((element.get(name) or "").split())
    if not value:
        raise MappingError("required attribute is missing", f"{element_path(element)}/@{name}")
    return value


def date_attribute(element: etree._Element, name: str) -> date:
    """The attribute as an ISO date (raises ``MappingError`` at ``.../@name``)."""
    value = required_attribute(element, name)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        path = f"{element_path(element)}/@{name}"
        raise MappingError(f"{value!r} is not a date (YYYY-MM-DD)", path) from exc


def decimal_attribute(element: etree._Element, name: str) -> Decimal:
    """The attribute as a Decimal (raises ``MappingError`` at ``.../@name``)."""
    value = required_attribute(element, name)
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise MappingError(
            f"{value!r} is not a number", f"{element_path(element)}/@{name}"
        ) from exc


def json_date(value: Mapping[str, Any], key: str, at: str) -> date:
    """``value[key]`` as an ISO date."""
    member = json_field(value, key, at, str)
    try:
        return date.fromisoformat(member)
    except ValueError as exc:
        raise MappingError(f"{member!r} is not a date (YYYY-MM-DD)", f"{at}.{key}") from exc


def json_field(value: Mapping[str, Any], key: str, at: str, kind: type | tuple[type, ...]) -> Any:
    """``value[key]`` checked to be of ``kind``.

    Raises:
        MappingError: missing or of another type, at the JSON path ``at.key``.
    """
    path = f"{at}.{key}"
    if key not in value or value[key] is None:
        raise MappingError("required member is missing", path)
    member = value[key]
    # bool is an int in Python; a flag where a number belongs is still a type error.
    if not isinstance(member, kind) or (isinstance(member, bool) and bool not in _kinds(kind)):
        raise MappingError(f"expected {_kind_names(kind)}, found {type(member).__name__}", path)
    return member


def json_decimal(value: Mapping[str, Any], key: str, at: str) -> Decimal:
    """``value[key]`` as a Decimal (JSON number or numeric string)."""
    member = json_field(value, key, at, (int, Decimal, str))
    try:
        return Decimal(member)
    except InvalidOperation as exc:
        raise MappingError(f"{member!r} is not a number", f"{at}.{key}") from exc


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _kinds(kind))
