"""Two offices' traffic for the office-scoped dashboard tests: Warsaw and Radom."""

from __future__ import annotations

from pathlib import Path

from support import OFFICES

from hub.envelope import Address, Envelope
from hub.errors import PermanentDeliveryError
from hub.store.repository import PlannedDelivery

WARSAW = "146501_1"
RADOM = "146301_1"
PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
BODY = b'<w:Pismo xmlns:w="http://crd.gov.pl/wzor/2013/12/12/1410/"><w:T>x</w:T></w:Pismo>'


def write_two_office_region(path: Path) -> Path:
    """A region of the test offices plus Radom, each with an EOD endpoint (never called)."""
    offices = [*OFFICES, (RADOM, "Urząd Miejski w Radomiu", "/umradom/skrytka")]
    lines = ['[region]\nname = "test region"\n']
    for office_id, name, esp in offices:
        lines.append(f'[[offices]]\nid = "{office_id}"\nname = "{name}"\nesp = "{esp}"\n')
    lines.append(
        '[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        'url = "http://127.0.0.1:9/offices/{office}/documents"\n'
    )
    lines.append(
        f'[[routes]]\nname = "pismo-ogolne-to-eod"\ndocument_type = "{PISMO_OGOLNE}"\n'
        'target_system = "eod"\nsteps = ["check_well_formed"]\n'
    )
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def dead_letter(store, office, error="EOD answered HTTP 400"):
    """A document for ``office`` whose delivery to the office's EOD died; (message, delivery)."""
    envelope = Envelope(
        document_type=PISMO_OGOLNE, source="epuap", destination=Address(office), body=BODY
    )
    message_id = str(envelope.envelope_id)
    store.accept(envelope)
    [ticket] = store.record_routing(
        message_id, [PlannedDelivery(f"eod@{office}", "pismo-ogolne-to-eod")]
    )
    claim = store.claim_delivery(ticket.delivery_id, "test", 60.0)
    store.fail_delivery(
        ticket.delivery_id,
        claim,
        PermanentDeliveryError(error),
        give_up=True,
        next_attempt_at=None,
    )
    return message_id, ticket.delivery_id
