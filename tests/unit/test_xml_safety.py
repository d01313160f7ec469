import pytest

from hub.errors import MalformedDocument
from hub.xml import parse_document, root_namespace


def test_the_root_namespace_names_the_form():
    root = parse_document(b'<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/"/>')
    assert root_namespace(root) == "http://crd.gov.pl/wzor/2013/12/12/1410/"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not xml at all", "not well-formed"),
        (b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "DOCTYPE"),
        (b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>', "DOCTYPE"),
        (b"<a>" + b"<b>" * 220 + b"</b>" * 220 + b"</a>", "deeper"),
    ],
)
def test_hostile_or_broken_documents_are_refused(body, reason):
    with pytest.raises(MalformedDocument, match=reason):
        parse_document(body)


def test_oversized_documents_are_refused_before_parsing():
    with pytest.raises(MalformedDocument, match="exceeds the limit"):
        parse_document(b"<a/>" + b" " * 100, max_bytes=50)
