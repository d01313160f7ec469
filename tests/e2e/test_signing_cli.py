"""``hub sign`` and ``hub verify`` as an operator uses them, and an independent verifier agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import xmlsec
from lxml import etree

PISMO = '<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">Treść</wnio:Dokument>'


def hub(tmp_path, *arguments):
    return subprocess.run(
        [sys.executable, "-m", "hub", *arguments],
        env={**os.environ, "HUB_VAR_DIR": str(tmp_path)},
        capture_output=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )


def signed_document(tmp_path):
    assert hub(tmp_path, "keys", "init", "--offices", "146501_1").returncode == 0
    (tmp_path / "in.xml").write_text(PISMO, encoding="utf-8")
    signed = hub(tmp_path, "sign", "--office", "146501_1", "in.xml")
    assert signed.returncode == 0, signed.stderr
    (tmp_path / "out.xml").write_bytes(signed.stdout)
    return signed.stdout


def test_a_document_signed_by_the_hub_verifies_and_a_changed_one_does_not(tmp_path):
    signed = signed_document(tmp_path)

    valid = hub(tmp_path, "verify", "--json", "out.xml")
    assert valid.returncode == 0
    assert "CN=146501_1" in json.loads(valid.stdout)["signer"]

    (tmp_path / "bad.xml").write_bytes(signed.replace("Treść".encode(), "Treść!".encode()))
    invalid = hub(tmp_path, "verify", "bad.xml")
    assert invalid.returncode == 1
    assert invalid.stdout.decode().startswith("invalid: the signature does not verify")


def test_an_independent_verifier_accepts_the_hubs_signature(tmp_path):
    # python-xmlsec (libxmlsec1) shares no code with signxml, which made the signature.
    root = etree.fromstring(signed_document(tmp_path))
    signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_file(
        str(tmp_path / "keys" / "146501_1.pem"), xmlsec.constants.KeyDataFormatCertPem
    )
    for node in root.iter():
        if node.get("Id"):
            context.register_id(node, "Id")
    context.verify(signature)  # raises xmlsec.Error if the signature does not hold
