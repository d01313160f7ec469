"""WS-Security for SOAP: an X.509 BinarySecurityToken, a signed Body and Timestamp, RSA-SHA256.

Both ends use this module: the hub signs its calls to ePUAP (as a zeep ``wsse`` plugin)
and checks the platform's signed answers; the simulators and the hub's own SOAP
endpoints check incoming requests with :func:`verify_envelope`.

Signing follows zeep's ``BinarySignature`` (through python-xmlsec) but adds the
``wsu:Timestamp`` the ePUAP policy asks for and keeps the xmlsec key loaded once.
Verification is written here rather than taken from zeep because zeep verifies a
response with the *caller's own* certificate; the hub must check the platform's
certificate, that the Body and Timestamp are what was signed (defence against
signature wrapping), that the Timestamp is current, and that the signer's certificate
comes from a trusted CA.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from zeep import ns
from zeep.utils import detect_soap_env
from zeep.wsse import signature as zeep_signature
from zeep.wsse.utils import get_security_header

from hub.errors import SignatureInvalid
from hub.signing.keystore import SigningIdentity
from hub.signing.trust import TrustStore

TIMESTAMP_TTL_S = 300
CLOCK_SKEW_S = 300
X509V3_VALUE_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)


class WsSecurity:
    """A zeep ``wsse`` plugin: sign every request, verify every answer.

    Args:
        identity: the office system's certificate and key that sign requests.
        platform_certificate_pem: the platform's certificate its answers must be signed
            with; None to accept unsigned answers (an endpoint configured so).
    """

    def __init__(
        self, identity: SigningIdentity, platform_certificate_pem: bytes | None = None
    ) -> None:
        self._key = signing_key(identity)
        self._platform_certificate_pem = platform_certificate_pem

    def apply(self, envelope: etree._Element, headers: dict[str, Any]) -> tuple[Any, Any]:
        """Add a Timestamp and sign it with the Body (called by zeep on every request)."""
        sign_envelope(envelope, self._key)
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        """Check the platform's signature on an answer (called by zeep on every response)."""
        if self._platform_certificate_pem is not None:
            verify_envelope(envelope, expected_certificate_pem=self._platform_certificate_pem)
        return envelope


def signing_key(identity: SigningIdentity) -> Any:
    """The xmlsec key of ``identity``, to keep and reuse for every signature."""
    key = xmlsec.Key.from_memory(identity.private_key_pem, xmlsec.KeyFormat.PEM, None)
    key.load_cert_from_memory(identity.certificate_pem, xmlsec.KeyFormat.PEM)
    return key


def sign_envelope(envelope: etree._Element, key: Any, ttl_s: int = TIMESTAMP_TTL_S) -> None:
    """Sign ``envelope`` in place: a Timestamp, a BinarySecurityToken, RSA-SHA256 over both."""
    security = get_security_header(envelope)
    for old in security.findall(f"{{{ns.WSU}}}Timestamp"):
        security.remove(old)
    security.append(_timestamp(ttl_s))
    zeep_signature._sign_envelope_with_key_binary(  # zeep's tested signer
        envelope, key, xmlsec.Transform.RSA_SHA256, xmlsec.Transform.SHA256
    )


def verify_envelope(
    envelope: etree._Element,
    *,
    expected_certificate_pem: bytes | None = None,
    trust: TrustStore | None = None,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """Verify a WS-Security signature over the Body and a current Timestamp.

    The signer is either exactly ``expected_certificate_pem``, or any certificate issued
    by a CA of ``trust`` and valid now (the trust store parses its CAs once).

    Returns:
        The signer's certificate.

    Raises:
        SignatureInvalid: with the reason (missing header, wrong signer, tampered body...).
    """
    now = now or datetime.datetime.now(datetime.UTC)
    soap_env = detect_soap_env(envelope)
    security = _security_header(envelope, soap_env)
    signature = security.find(f"{{{ns.DS}}}Signature")
    if signature is None:
        raise SignatureInvalid("the wsse:Security header holds no ds:Signature")
    certificate = _signer_certificate(security, signature)
    _check_signer(certificate, expected_certificate_pem, trust, now)
    referenced = _referenced_ids(signature)
    body = envelope.find(f"{{{soap_env}}}Body")
    timestamp = security.find(f"{{{ns.WSU}}}Timestamp")
    _require_signed(body, "soap:Body", referenced)
    _require_signed(timestamp, "wsu:Timestamp", referenced)
    assert timestamp is not None
    _check_timestamp(timestamp, now)
    _verify_signature_value(envelope, signature, certificate, referenced)
    return certificate


def _timestamp(ttl_s: int) -> etree._Element:
    now = datetime.datetime.now(datetime.UTC)
    timestamp = etree.Element(f"{{{ns.WSU}}}Timestamp")
    created = etree.SubElement(timestamp, f"{{{ns.WSU}}}Created")
    created.text = _zulu(now)
    expires = etree.SubElement(timestamp, f"{{{ns.WSU}}}Expires")
    expires.text = _zulu(now + datetime.timedelta(seconds=ttl_s))
    return timestamp


def _zulu(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _security_header(envelope: etree._Element, soap_env: str) -> etree._Element:
    header = envelope.find(f"{{{soap_env}}}Header")
    security = None if header is None else header.find(f"{{{ns.WSSE}}}Security")
    if security is None:
        raise SignatureInvalid("the message carries no wsse:Security header")
    return security


def _signer_certificate(security: etree._Element, signature: etree._Element) -> x509.Certificate:
    reference = signature.find(
        f"{{{ns.DS}}}KeyInfo/{{{ns.WSSE}}}SecurityTokenReference/{{{ns.WSSE}}}Reference"
    )
    if reference is None or not reference.get("URI", "").startswith("#"):
        raise SignatureInvalid("the signature does not reference a BinarySecurityToken")
    token_id = reference.get("URI", "")[1:]
    for token in security.findall(f"{{{ns.WSSE}}}BinarySecurityToken"):
        if token.get(f"{{{ns.WSU}}}Id") == token_id and token.get("ValueType") == X509V3_VALUE_TYPE:
            try:
                return x509.load_der_x509_certificate(base64.b64decode(token.text or ""))
            except ValueError as exc:
                raise SignatureInvalid(
                    f"the BinarySecurityToken is no X.509 certificate: {exc}"
                ) from exc
    raise SignatureInvalid(f"no X.509 BinarySecurityToken with id {token_id!r}")


def _check_signer(
    certificate: x509.Certificate,
    expected_certificate_pem: bytes | None,
    trust: TrustStore | None,
    now: datetime.datetime,
) -> None:
    if expected_certificate_pem is not None:
        expected = x509.load_pem_x509_certificate(expected_certificate_pem)
        if certificate != expected:
            raise SignatureInvalid(
                f"signed by {certificate.subject.rfc4514_string()}, "
                f"not by the expected {expected.subject.rfc4514_string()}"
            )
        return
    if trust is None:
        raise SignatureInvalid("no trust store to check the signer against")
    trust.check(certificate, now)


def _referenced_ids(signature: etree._Element) -> set[str]:
    references = signature.findall(f"{{{ns.DS}}}SignedInfo/{{{ns.DS}}}Reference")
    return {
        reference.get("URI", "")[1:]
        for reference in references
        if reference.get("URI", "").startswith("#")
    }


def _require_signed(node: etree._Element | None, name: str, referenced: set[str]) -> None:
    if node is None:
        raise SignatureInvalid(f"the message has no {name}")
    if node.get(f"{{{ns.WSU}}}Id") not in referenced:
        # A signature over some other element proves nothing about this one.
        raise SignatureInvalid(f"the {name} is not covered by the signature")


def _check_timestamp(timestamp: etree._Element, now: datetime.datetime) -> None:
    expires = timestamp.findtext(f"{{{ns.WSU}}}Expires")
    created = timestamp.findtext(f"{{{ns.WSU}}}Created")
    try:
        expires_at = datetime.datetime.fromisoformat((expires or "").replace("Z", "+00:00"))
        created_at = datetime.datetime.fromisoformat((created or "").replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureInvalid(f"the wsu:Timestamp is unreadable: {exc}") from exc
    skew = datetime.timedelta(seconds=CLOCK_SKEW_S)
    if expires_at < now - skew:
        raise SignatureInvalid(f"the message expired at {expires}")
    if created_at > now + skew:
        raise SignatureInvalid(f"the message claims to be created in the future ({created})")


def _verify_signature_value(
    envelope: etree._Element,
    signature: etree._Element,
    certificate: x509.Certificate,
    referenced: set[str],
) -> None:
    context = xmlsec.SignatureContext()
    for node in envelope.iter():
        if node.get(f"{{{ns.WSU}}}Id") in referenced:
            context.register_id(node, "Id", ns.WSU)
    context.key = xmlsec.Key.from_memory(
        certificate.public_bytes(serialization.Encoding.PEM), xmlsec.KeyFormat.CERT_PEM, None
    )
    try:
        context.verify(signature)
    except xmlsec.Error as exc:
        raise SignatureInvalid("the signature does not match the signed content") from exc
