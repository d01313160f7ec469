"""A case's statutory deadline comes from the service its filing was made under.

The catalogue gives each service its deadline in days (a certificate: 7 days under the
KPA, art. 217). The case opens when the filing is stored, before the hub knows its
service; routing finds the service and counts the deadline from the case's opening. A
sender that names the deadline itself keeps it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from legacy_support import document, submit
from support import OFFICES

from hub.store.cases import case_view

CERTIFICATE_FORM = "urn:hub:wzor:zaswiadczenie:1"
PISMO = "http://crd.gov.pl/wzor/2013/12/12/1410/"
WARSAW = OFFICES[0][0]
BODY = b'<z:Wniosek xmlns:z="urn:hub:wzor:zaswiadczenie:1"><z:Cel>praca</z:Cel></z:Wniosek>'
LETTER = b'<w:Pismo xmlns:w="http://crd.gov.pl/wzor/2013/12/12/1410/"><w:T>x</w:T></w:Pismo>'


@pytest.fixture
def region_path(tmp_path, eod):
    lines = ['[region]\nname = "deadline test region"\n']
    for office_id, name, esp in OFFICES:
        lines.append(f'[[offices]]\nid = "{office_id}"\nname = "{name}"\nesp = "{esp}"\n')
    lines.append(
        '[[services]]\nid = "zaswiadczenie"\nname = "Wydanie zaświadczenia"\n'
        f'form = "{CERTIFICATE_FORM}"\ndeadline_days = 7\n'
    )
    lines.append(
        f'[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        f'url = "{eod.url}/offices/{{office}}/documents"\ntimeout_s = 5.0\n'
    )
    lines.append('[[handling]]\nservice = "zaswiadczenie"\nsystems = ["eod"]\noffices = "*"\n')
    # A document outside the catalogue's services travels by an explicit route.
    lines.append(
        f'[[routes]]\nname = "letters"\ndocument_type = "{PISMO}"\ntarget_system = "eod"\n'
    )
    path = tmp_path / "region.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def deadline_days_of(hub, case_id: str) -> float:
    case = case_view(hub.store, case_id)
    assert case is not None
    assert case.deadline_at is not None
    return (case.deadline_at - case.opened_at) / timedelta(days=1)


@pytest.mark.parametrize(
    ("filing", "days"),
    [
        pytest.param(document(WARSAW, CERTIFICATE_FORM, BODY), 7, id="the service's days"),
        pytest.param(
            document(WARSAW, CERTIFICATE_FORM, BODY, **{"statutory-deadline-days": "14"}),
            14,
            id="the days the sender named are kept",
        ),
        pytest.param(document(WARSAW, PISMO, LETTER), 30, id="no service: the KPA month"),
    ],
)
def test_a_case_deadline_counts_from_its_opening_with_the_days_of_its_service(hub, filing, days):
    hub.start_relay()
    hub.start_worker()

    submit(hub, filing)
    hub.wait_until_settled(1)

    assert deadline_days_of(hub, filing.correlation_id) == days
