"""One office's WS-Security signer, made once, signs from every drainer thread at once.

The pull channel keeps one signer per office for the whole process and hands it to
whichever thread drains that office's mailbox. python-xmlsec copies the signer's key
into each signature context before signing, so concurrent signatures must each be
whole and verify against the office's certificate.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from lxml import etree

from hub.signing.keystore import Keystore, init_keystore
from hub.signing.wssecurity import WsSecurity, verify_envelope

OFFICE = "146501_1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def request(number: int) -> etree._Element:
    return etree.fromstring(
        f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Header/><soap:Body>'
        f'<p:OczekujaceDokumenty xmlns:p="urn:test:pull"><p:n>{number}</p:n>'
        "</p:OczekujaceDokumenty></soap:Body></soap:Envelope>"
    )


def test_one_signer_shared_by_many_threads_makes_only_valid_signatures(tmp_path):
    init_keystore(tmp_path / "keys", [OFFICE], ca_dir=tmp_path / "ca")
    identity = Keystore(tmp_path / "keys").identity(OFFICE)
    signer = WsSecurity(identity)

    def sign(number: int) -> bytes:
        envelope, _headers = signer.apply(request(number), {})
        return etree.tostring(envelope)

    with ThreadPoolExecutor(8) as pool:
        signed = list(pool.map(sign, range(200)))

    signers = {
        verify_envelope(etree.fromstring(data), expected_certificate_pem=identity.certificate_pem)
        for data in signed
    }
    assert signers == {identity.certificate}
    assert all(f"<p:n>{number}</p:n>".encode() in data for number, data in enumerate(signed))
