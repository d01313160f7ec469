"""Golden-file tests of every mapping: the cases are data under tests/fixtures/mappings/.

Each ``<mapping>/<case>/`` folder holds ``input.xml`` or ``input.json``, an optional
``context.json`` (the envelope headers the mapping may read), and either ``expected.xml`` /
``expected.json`` (the exact translation) or ``error.json`` (``{"path": ..., "reason": ...}``:
the mapping must refuse the input with a ``MappingError`` at that path whose reason
contains that text). XML is compared node by node (tag, attributes, whitespace-normalised
text); JSON as parsed objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import mappings
from mappings import MAPPINGS, MappingError
from mappings.letter import LETTER_NS, LETTER_SCHEMA

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mappings"


def _cases() -> list[Any]:
    cases = []
    for mapping_dir in sorted(FIXTURES.iterdir()):
        for case_dir in sorted(path for path in mapping_dir.iterdir() if path.is_dir()):
            cases.append(
                pytest.param(mapping_dir.name, case_dir, id=f"{mapping_dir.name}/{case_dir.name}")
            )
    return cases


CASES = _cases()
GOLDEN = [case for case in CASES if not (case.values[1] / "error.json").exists()]
ERRORS = [case for case in CASES if (case.values[1] / "error.json").exists()]


def _input(case_dir: Path) -> bytes:
    for name in ("input.xml", "input.json"):
        if (case_dir / name).exists():
            return (case_dir / name).read_bytes()
    raise AssertionError(f"{case_dir} has no input.xml or input.json")


def _context(case_dir: Path) -> dict[str, str]:
    path = case_dir / "context.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# --- node-by-node comparison ------------------------------------------------------------------


def _normalised(text: str | None) -> str:
    return " ".join((text or "").split())


def _xml_differences(expected: etree._Element, actual: etree._Element, path: str = "") -> list[str]:
    here = f"{path}/{etree.QName(expected).localname}"
    if expected.tag != actual.tag:
        return [f"{here}: tag {actual.tag} where {expected.tag} was expected"]
    differences = []
    if dict(expected.attrib) != dict(actual.attrib):
        differences.append(
            f"{here}: attributes {dict(actual.attrib)} != expected {dict(expected.attrib)}"
        )
    if _normalised(expected.text) != _normalised(actual.text):
        differences.append(
            f"{here}: text {_normalised(actual.text)!r} != expected {_normalised(expected.text)!r}"
        )
    expected_children = [child for child in expected if isinstance(child.tag, str)]
    actual_children = [child for child in actual if isinstance(child.tag, str)]
    for index, (want, got) in enumerate(zip(expected_children, actual_children, strict=False)):
        differences += _xml_differences(want, got, f"{here}[{index + 1}]" if index else here)
    if len(expected_children) != len(actual_children):
        extra = [etree.QName(c).localname for c in actual_children[len(expected_children) :]]
        missing = [etree.QName(c).localname for c in expected_children[len(actual_children) :]]
        differences.append(f"{here}: children differ; unexpected {extra}, missing {missing}")
    return differences


def _json_differences(expected: Any, actual: Any, path: str = "$") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        differences = [f"{path}.{key}: missing" for key in expected if key not in actual]
        differences += [f"{path}.{key}: unexpected" for key in actual if key not in expected]
        for key in expected.keys() & actual.keys():
            differences += _json_differences(expected[key], actual[key], f"{path}.{key}")
        return differences
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items where {len(expected)} were expected"]
        return [
            difference
            for index, (want, got) in enumerate(zip(expected, actual, strict=True))
            for difference in _json_differences(want, got, f"{path}[{index}]")
        ]
    return [] if expected == actual else [f"{path}: {actual!r} != expected {expected!r}"]


def assert_same_document(expected_path: Path, actual: bytes) -> None:
    if expected_path.suffix == ".json":
        differences = _json_differences(
            json.loads(expected_path.read_bytes()), json.loads(actual, parse_float=str)
        )
        shown = actual.decode()
    else:
        expected_root = etree.parse(str(expected_path)).getroot()
        actual_root = etree.fromstring(actual)
        differences = _xml_differences(expected_root, actual_root)
        shown = etree.tostring(actual_root, pretty_print=True, encoding="unicode")
    assert not differences, "\n".join(["differences:", *differences, "actual document:", shown])


# --- the cases ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "case_dir"), GOLDEN)
def test_mapping_translates_golden_case(name: str, case_dir: Path) -> None:
    translated = mappings.apply(name, _input(case_dir), _context(case_dir))

    expected = case_dir / (
        "expected.json" if (case_dir / "expected.json").exists() else "expected.xml"
    )
    assert_same_document(expected, translated.body)
    assert translated.content_type == MAPPINGS[name].target_content_type
    assert translated.document_type == MAPPINGS[name].target_type


@pytest.mark.parametrize(("name", "case_dir"), ERRORS)
def test_mapping_refuses_bad_input_naming_the_path(name: str, case_dir: Path) -> None:
    expected = json.loads((case_dir / "error.json").read_text(encoding="utf-8"))

    with pytest.raises(MappingError) as caught:
        mappings.apply(name, _input(case_dir), _context(case_dir))

    assert caught.value.path == expected["path"]
    assert expected["reason"] in caught.value.reason


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_every_mapping_has_two_golden_cases_and_an_error_case(name: str) -> None:
    golden = [case for case in GOLDEN if case.values[0] == name]
    errors = [case for case in ERRORS if case.values[0] == name]
    assert len(golden) >= 2, f"{name} has {len(golden)} golden cases"
    assert errors, f"{name} has no error case"


def test_every_fixture_folder_names_a_registered_mapping() -> None:
    assert {case.values[0] for case in CASES} <= set(MAPPINGS)


@pytest.mark.parametrize(
    ("name", "case_dir"), [case for case in GOLDEN if case.values[0].endswith("-to-letter")]
)
def test_every_letter_is_a_valid_hub_pismo(name: str, case_dir: Path) -> None:
    letter = etree.fromstring(mappings.apply(name, _input(case_dir), _context(case_dir)).body)

    assert letter.tag == f"{{{LETTER_NS}}}Pismo"
    LETTER_SCHEMA.validate(letter)  # raises on any violation


# --- safety and the registry ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
        b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">&x;</wnio:Dokument>',
    ],
)
def test_a_doctype_is_refused_before_anything_is_read(body: bytes) -> None:
    with pytest.raises(MappingError, match="DOCTYPE"):
        mappings.apply("pismo-ogolne-to-eod", body)


def test_malformed_xml_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="not well-formed"):
        mappings.apply("pismo-ogolne-to-eod", b"<wnio:Dokument")


def test_an_unknown_mapping_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        mappings.apply("no-such-mapping", b"<a/>")


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_registry_entries_describe_themselves(name: str) -> None:
    mapping = MAPPINGS[name]
    assert mapping.name == name
    assert mapping.source_content_type in {"application/xml", "application/json"}
    assert mapping.target_content_type in {"application/xml", "application/json"}
    assert mapping.source_type
    assert mapping.target_type
    assert mapping.description


def _refuse_float(text: str) -> None:
    pytest.fail(f"float {text} in a JSON output")


@pytest.mark.parametrize(
    ("name", "case_dir"),
    [case for case in GOLDEN if MAPPINGS[case.values[0]].target_content_type.endswith("json")],
)
def test_json_outputs_carry_amounts_as_strings_never_floats(name: str, case_dir: Path) -> None:
    # A float would lose grosze on the way into the legacy system.
    body = mappings.apply(name, _input(case_dir), _context(case_dir)).body

    json.loads(body, parse_float=_refuse_float)


# --- KSeF: the real FA(3) schema ------------------------------------------------------------

KSEF_XSD = Path(__file__).resolve().parents[2] / "wsdl" / "ksef"
TYPES_URL = (
    "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/"
    "StrukturyDanych_v10-0E.xsd"
)


class _LocalTypes(etree.Resolver):
    def resolve(self, system_url, public_id, context):
        if system_url == TYPES_URL:
            return self.resolve_filename(
                str(KSEF_XSD / "bazowe" / "StrukturyDanych_v10-0E.xsd"), context
            )
        return None


def _fa3_schema() -> etree.XMLSchema:
    # Built here, apart from the mapping's own, so the test does not trust the code under test.
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalTypes())
    return etree.XMLSchema(etree.parse(str(KSEF_XSD / "schemat_FA(3)_v1-0E.xsd"), parser))


@pytest.mark.parametrize(
    ("name", "case_dir"), [case for case in GOLDEN if case.values[0] == "finance-invoice-to-ksef"]
)
def test_every_ksef_invoice_validates_against_the_ministrys_fa3_schema(name, case_dir):
    invoice = etree.fromstring(mappings.apply(name, _input(case_dir), _context(case_dir)).body)

    schema = _fa3_schema()
    assert schema.validate(invoice), schema.error_log


def test_a_sales_invoice_comes_back_from_ksef_with_the_same_totals():
    case_dir = FIXTURES / "finance-invoice-to-ksef" / "lease-mixed-rates-exempt-line"
    sale = json.loads(_input(case_dir))

    fa3 = mappings.apply("finance-invoice-to-ksef", _input(case_dir)).body
    purchase = json.loads(
        mappings.apply("ksef-invoice-to-finance", fa3, {"ksef-number": "X-1"}).body
    )

    assert purchase["number"] == sale["number"]
    assert purchase["seller"]["nip"] == sale["seller"]["nip"]
    assert purchase["buyer"]["nip"] == sale["buyer"]["nip"]
    assert [line["name"] for line in purchase["lines"]] == [line["name"] for line in sale["lines"]]
    assert purchase["gross_total"] == "10565.14"
    assert purchase["ksef_number"] == "X-1"


def test_the_ksef_schema_never_reaches_for_the_network():
    # The FA(3) XSD imports its base types by absolute URL: the mapping resolves it to the
    # local copy. An unmapped URL must fail, not be fetched.
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    with pytest.raises(etree.XMLSchemaParseError):
        etree.XMLSchema(etree.parse(str(KSEF_XSD / "schemat_FA(3)_v1-0E.xsd"), parser))


# --- the comparison itself ------------------------------------------------------------------


def test_the_golden_comparison_names_the_node_that_differs():
    expected = etree.fromstring(b"<a xmlns='urn:x'><b k='1'>one</b><b>two</b></a>")
    actual = etree.fromstring(b"<a xmlns='urn:x'><b k='2'>one</b><b> two </b><c/></a>")

    differences = _xml_differences(expected, actual)

    assert differences == [
        "/a/b: attributes {'k': '2'} != expected {'k': '1'}",
        "/a: children differ; unexpected ['c'], missing []",
    ]
