"""Where the ePUAP contracts live and how zeep is set up to read them safely."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import zeep
from zeep.transports import Transport

from hub.http import http_session

WSDL_DIR = Path(__file__).resolve().parents[2] / "wsdl" / "epuap"
PULL_WSDL = WSDL_DIR / "pull.wsdl"
PULL_BINDING = "{http://ws.epuap.gov.pl/pull/}pull"
SKRYTKA_WSDL = WSDL_DIR / "skrytka.wsdl"
SKRYTKA_BINDING = "{http://ws.epuap.gov.pl/skrytka/}skrytkaBinding"
FILEREPO_WSDL = WSDL_DIR / "filerepo.wsdl"
FILEREPO_BINDING = "{http://ws.epuap.gov.pl/filerepo/}FileRepoBinding"
DORECZYCIEL_WSDL = WSDL_DIR / "doreczyciel.wsdl"
DORECZYCIEL_BINDING = "{http://ws.epuap.gov.pl/doreczyciel/}doreczyciel"
STATUS_OK = 1


def zeep_settings() -> zeep.Settings:
    """Strict parsing with DTDs, entities and external references refused."""
    return zeep.Settings(
        strict=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )


def soap_client(wsdl: Path, url: str, timeout_s: float, wsse: Any = None) -> zeep.Client:
    """A zeep client for a local WSDL, with one HTTP session to ``url`` and bounded timeouts.

    ``wsse`` is the WS-Security plugin that signs requests and checks answers.
    """
    transport = Transport(session=http_session(url), timeout=timeout_s, operation_timeout=timeout_s)
    return zeep.Client(str(wsdl), transport=transport, settings=zeep_settings(), wsse=wsse)


def sha1_b64(content: bytes) -> str:
    """ePUAP's ``skrot``: the SHA-1 digest of a document, base64-encoded."""
    return base64.b64encode(hashlib.sha1(content, usedforsecurity=False).digest()).decode()
