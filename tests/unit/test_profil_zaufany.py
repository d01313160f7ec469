"""A Profil Zaufany signature is recognised and its signer named, in either form it comes."""

from lxml import etree

from hub.signing.steps import _profil_zaufany

XADES = "http://uri.etsi.org/01903/v1.3.2#"
DS = "http://www.w3.org/2000/09/xmldsig#"
PODPIS_ZP = (
    '<ppZP:PodpisZP xmlns:ppZP="http://crd.gov.pl/xml/schematy/ppzp/">'
    "<ppZP:DaneZPOsobyFizycznej><ppZP:Imie>Anna</ppZP:Imie>"
    "<ppZP:Nazwisko>Nowak</ppZP:Nazwisko></ppZP:DaneZPOsobyFizycznej></ppZP:PodpisZP>"
)


def signature_with_role(role_content):
    """Verified SignedProperties (what the verifier returns) whose role holds ``role_content``."""
    return etree.fromstring(
        f'<xades:SignedProperties xmlns:ds="{DS}" xmlns:xades="{XADES}">'
        "<xades:SignedSignatureProperties><xades:SignerRole>"
        f"<xades:ClaimedRoles><xades:ClaimedRole>{role_content}</xades:ClaimedRole>"
        "</xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties>"
        "</xades:SignedProperties>"
    )


def test_a_role_holding_podpis_zp_elements_names_the_signer():
    assert _profil_zaufany(signature_with_role(PODPIS_ZP)) == ("profil-zaufany", "Anna Nowak")


def test_a_role_holding_podpis_zp_as_text_names_the_signer():
    escaped = PODPIS_ZP.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert _profil_zaufany(signature_with_role(escaped)) == ("profil-zaufany", "Anna Nowak")


def test_an_ordinary_role_is_no_profil_zaufany():
    assert _profil_zaufany(signature_with_role("Kierownik referatu")) is None
