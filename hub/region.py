"""The region's configuration: the service catalogue (WKUP), endpoints, routes, inbound channels.

Loaded from TOML, not code, so a regional centre adds an office without a release.
String values may use ``${NAME}`` or ``${NAME:-default}`` to take a value from the
environment (URLs differ between the demo, the tests and production).

A ``[[systems]]`` table declares one kind of domain system for many offices at once;
it expands to one endpoint per office named ``<system>@<office>``, with ``{office}``
in its URL replaced by the office id.

The catalogue: ``[[offices]]`` (TERYT code, name, kind, ESP and e-Doręczenia
addresses), ``[[services]]`` (what a citizen can file: the form's namespace, the
statutory deadline) and ``[[handling]]`` (which systems of which offices handle a
service). A handling table selects offices like a systems table (``offices = "*"``
or a list) and may narrow them by ``kinds``; every system it names gets the document,
so a property-tax declaration goes to the office's EOD for registration and to its
tax system for processing. Handling adds routes implicitly; an explicit ``[[routes]]``
table for the same document type and target system takes precedence (its steps win).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hub.errors import ConfigurationError, RegionInvalid

_ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")
# An e-Doręczenia address (adres do doręczeń elektronicznych): AE:PL-12345-67890-ABCDE-12.
EDORECZENIA_ADDRESS = re.compile(r"^AE:PL-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9]{2}$")
ESP_ADDRESS = re.compile(r"^/(?P<podmiot>[^/\s]+)/(?P<skrytka>[^/\s]+)$")

# The kinds of office a region knows. The gmina kinds are TERYT's (RODZ 1, 2, 3); a
# city with powiat rights is listed twice, as its gmina and as its county-level office.
GMINA_KINDS = ("gmina miejska", "gmina wiejska", "gmina miejsko-wiejska")
OFFICE_KINDS = (
    *GMINA_KINDS,
    "miasto na prawach powiatu",
    "powiat",
    "województwo",
    # A municipal unit (a Warsaw district, a delegatura) that runs its own office.
    "jednostka pomocnicza",
    # A gmina whose type the file does not state: the default, so older files still load.
    "gmina",
)
# TERYT's own descriptions (NAZWA_DOD) that name one of the kinds above.
KIND_ALIASES = {
    "gmina miejska, miasto stołeczne": "gmina miejska",
    "miasto stołeczne, na prawach powiatu": "miasto na prawach powiatu",
    "dzielnica": "jednostka pomocnicza",
    "delegatura": "jednostka pomocnicza",
}


@dataclass(frozen=True, slots=True)
class Office:
    """One office of the region, identified by its TERYT code (``WWPPGG_R``, ``WWPP`` or ``WW``)."""

    id: str
    name: str
    kind: str = "gmina"
    esp_address: str = ""
    edoreczenia_address: str = ""

    @property
    def is_gmina(self) -> bool:
        """Whether the office is a gmina's (of any type)."""
        return self.kind == "gmina" or self.kind in GMINA_KINDS

    def has_kind(self, kind: str) -> bool:
        """Whether the office is of ``kind``; ``gmina`` stands for every gmina kind."""
        return self.kind == kind or (kind == "gmina" and self.is_gmina)

    @property
    def epuap_podmiot(self) -> str:
        """The ePUAP subject id, the first part of the ESP address ``/{podmiot}/{skrytka}``."""
        return _esp_parts(self.esp_address)[0]

    @property
    def epuap_mailbox(self) -> str:
        """The mailbox name, the second part of the ESP address."""
        return _esp_parts(self.esp_address)[1]


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One destination system of one office: how to reach it and how hard to try."""

    name: str
    kind: str
    office: str
    system: str
    url: str
    timeout_s: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)
    # How long a delivery keeps being retried before it is dead-lettered (None: the
    # settings' ``max_age_s``); a system that is down for a planned week needs longer.
    max_age_s: float | None = None
    # The office this endpoint serves, as the catalogue describes it (its ePUAP and
    # e-Doręczenia addresses sign and address what the endpoint sends).
    owner: Office | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """Which documents go where: a match, the steps to apply, and the target system."""

    name: str
    document_type: str
    target_system: str
    offices: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    steps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """A service of the catalogue: what a citizen or business can file with an office."""

    id: str
    name: str
    # The namespace of the service's form template: the document type of its filings.
    form: str
    # The statutory deadline for dealing with the case, in days (e.g. 30 under KPA art. 35).
    deadline_days: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class HandlingConfig:
    """One system that handles one service at the offices listed (a handling table, expanded)."""

    service: str
    system: str
    offices: frozenset[str]
    steps: tuple[str, ...] = ()

    @property
    def route_name(self) -> str:
        """The name of the implicit route this handling adds (recorded with each delivery)."""
        return f"service:{self.service}:{self.system}"


@dataclass(frozen=True, slots=True)
class InboundConfig:
    """A channel the hub receives on (a pulled national inbox, a watched folder, ...)."""

    name: str
    kind: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Region:
    """The whole routing configuration of one regional hub."""

    name: str
    offices: Mapping[str, Office]
    endpoints: Mapping[str, EndpointConfig]
    routes: tuple[RouteConfig, ...]
    inbound: tuple[InboundConfig, ...]
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)
    handling: tuple[HandlingConfig, ...] = ()

    def service_by_form(self, document_type: str) -> ServiceConfig | None:
        """The service whose form template is ``document_type``, if any."""
        for service in self.services.values():
            if service.form == document_type:
                return service
        return None

    def handling_of(self, service: str, office: str) -> list[HandlingConfig]:
        """The handling entries by which ``office`` takes filings of ``service``."""
        return [
            handling
            for handling in self.handling
            if handling.service == service and office in handling.offices
        ]

    def catalogue_routes(self) -> tuple[RouteConfig, ...]:
        """The routes the handling tables add: one per service and handling system."""
        return tuple(
            RouteConfig(
                name=handling.route_name,
                document_type=self.services[handling.service].form,
                target_system=handling.system,
                offices=handling.offices,
                steps=handling.steps,
            )
            for handling in self.handling
        )

    def office_by_esp(self, address: str) -> Office | None:
        """The office whose ePUAP mailbox is ``address``, if any."""
        for office in self.offices.values():
            if office.esp_address == address:
                return office
        return None

    def restricted_to(self, office_ids: Sequence[str]) -> Region:
        """A copy that keeps only ``office_ids`` and their endpoints (the demo's ``--offices``)."""
        keep = set(office_ids)
        return Region(
            name=self.name,
            offices={key: office for key, office in self.offices.items() if key in keep},
            endpoints={
                key: endpoint for key, endpoint in self.endpoints.items() if endpoint.office in keep
            },
            routes=self.routes,
            inbound=self.inbound,
            services=self.services,
            handling=tuple(
                dataclasses.replace(handling, offices=handling.offices & keep)
                for handling in self.handling
                if handling.offices & keep
            ),
        )


_Keyed = TypeVar("_Keyed", Office, ServiceConfig)


def load_region(path: Path, environ: Mapping[str, str] | None = None) -> Region:
    """Read and validate a region file.

    Raises:
        ConfigurationError: naming the file and what is wrong in it.
    """
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigurationError(f"region file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"region file {path} cannot be read: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"region file {path}: {exc}") from exc
    try:
        return parse_region(_expand(raw, environ))
    except ConfigurationError as exc:
        line = _line_of(text, exc)
        where = f"region file {path}, line {line}" if line else f"region file {path}"
        raise ConfigurationError(f"{where}: {exc.reason}") from exc


def parse_region(raw: Mapping[str, Any]) -> Region:
    """Build a :class:`Region` from already-parsed TOML data.

    Raises:
        RegionInvalid: naming the table (and key) at fault, when one is.
        ConfigurationError: for what no single table holds.
    """
    offices = _unique("offices", "id", _each(raw, "offices", _office))
    endpoints = _each(raw, "endpoints", _endpoint)
    for index, system in enumerate(_tables(raw, "systems")):
        with _at("systems", index):
            endpoints.extend(_system_endpoints(system, offices))
    endpoint_map = _owned_endpoints(raw, endpoints, offices)
    services = _unique("services", "id", _each(raw, "services", _service))
    _forms_unique(services)
    handling: list[HandlingConfig] = []
    for index, item in enumerate(_tables(raw, "handling")):
        with _at("handling", index):
            handling.extend(_handling(item, offices, services, endpoint_map))
    name = str(raw.get("region", {}).get("name", "region"))
    return Region(
        name=name,
        offices=offices,
        endpoints=endpoint_map,
        routes=tuple(_each(raw, "routes", _route)),
        inbound=tuple(_each(raw, "inbound", _inbound)),
        services=services,
        handling=tuple(handling),
    )


_Item = TypeVar("_Item")


def _tables(raw: Mapping[str, Any], table: str) -> list[Mapping[str, Any]]:
    items = raw.get(table, [])
    if not isinstance(items, list):
        raise ConfigurationError(f"'{table}' must be an array of tables ([[{table}]])")
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise RegionInvalid(f"[[{table}]] entries must be tables", table, index)
    return items


def _each(
    raw: Mapping[str, Any], table: str, build: Callable[[Mapping[str, Any]], _Item]
) -> list[_Item]:
    """``build`` over every ``[[table]]``; an error is located at the table it came from."""
    built = []
    for index, item in enumerate(_tables(raw, table)):
        with _at(table, index):
            built.append(build(item))
    return built


@contextlib.contextmanager
def _at(table: str, index: int) -> Iterator[None]:
    try:
        yield
    except RegionInvalid:
        raise
    except ConfigurationError as exc:
        key = exc.key if isinstance(exc, _BadValue) else None
        raise RegionInvalid(f"[[{table}]] #{index + 1}: {exc.reason}", table, index, key) from exc


class _BadValue(ConfigurationError):
    """A value of one key is wrong (the table around it is added by :func:`_at`)."""

    def __init__(self, reason: str, key: str) -> None:
        super().__init__(reason)
        self.key = key


def _owned_endpoints(
    raw: Mapping[str, Any], endpoints: list[EndpointConfig], offices: Mapping[str, Office]
) -> dict[str, EndpointConfig]:
    owned: dict[str, EndpointConfig] = {}
    for endpoint in endpoints:
        if endpoint.name in owned:
            raise _locate_named(raw, "endpoint", endpoint, "is declared twice")
        if endpoint.office not in offices:
            problem = f"names unknown office {endpoint.office}"
            raise _locate_named(raw, "endpoint", endpoint, problem)
        owned[endpoint.name] = dataclasses.replace(endpoint, owner=offices[endpoint.office])
    return owned


def _locate_named(
    raw: Mapping[str, Any], what: str, endpoint: EndpointConfig, problem: str
) -> ConfigurationError:
    reason = f"{what} {endpoint.name} {problem}"
    for index, item in enumerate(raw.get("endpoints", [])):
        if item.get("name") == endpoint.name:
            return RegionInvalid(reason, "endpoints", index, "name")
    for index, item in enumerate(raw.get("systems", [])):
        if item.get("name") == endpoint.system:
            return RegionInvalid(reason, "systems", index, "offices")
    return ConfigurationError(reason)


def _expand(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(lambda match: _lookup(match, environ), value)
    if isinstance(value, list):
        return [_expand(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: _expand(item, environ) for key, item in value.items()}
    return value


def _lookup(match: re.Match[str], environ: Mapping[str, str]) -> str:
    name, default = match.group("name"), match.group("default")
    if name in environ:
        return environ[name]
    if default is None:
        raise ConfigurationError(f"${{{name}}} is not set in the environment and has no default")
    return default


def _esp_parts(address: str) -> tuple[str, str]:
    match = ESP_ADDRESS.match(address)
    if not match:
        raise ConfigurationError(f"ESP address {address!r} is not of the form /podmiot/skrytka")
    return match.group("podmiot"), match.group("skrytka")


def _required(item: Mapping[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise _BadValue(f"{what} {dict(item)!r} needs a non-empty string '{key}'", key)
    return value


def _office(item: Mapping[str, Any]) -> Office:
    office = Office(
        id=_required(item, "id", "office"),
        name=_required(item, "name", "office"),
        kind=_office_kind(item.get("kind", "gmina")),
        esp_address=str(item.get("esp", "")),
        edoreczenia_address=str(item.get("edoreczenia", "")),
    )
    if office.esp_address:
        try:
            _esp_parts(office.esp_address)
        except ConfigurationError as exc:
            raise _BadValue(exc.reason, "esp") from exc
    if office.edoreczenia_address and not EDORECZENIA_ADDRESS.match(office.edoreczenia_address):
        raise _BadValue(
            f"e-Doręczenia address {office.edoreczenia_address!r} of office {office.id} "
            "is not of the form AE:PL-XXXXX-XXXXX-XXXXX-XX",
            "edoreczenia",
        )
    return office


def _office_kind(value: Any) -> str:
    kind = KIND_ALIASES.get(str(value), str(value))
    if kind not in OFFICE_KINDS:
        raise _BadValue(f"office kind {value!r} is not one of: {', '.join(OFFICE_KINDS)}", "kind")
    return kind


def _kinds(item: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The ``kinds`` selector of a systems or handling table (None: every kind)."""
    if "kinds" not in item:
        return None
    kinds = item["kinds"]
    if not isinstance(kinds, list) or not kinds:
        raise _BadValue("'kinds' must be a non-empty list of office kinds", "kinds")
    for kind in kinds:
        if kind not in OFFICE_KINDS:
            raise _BadValue(f"kind {kind!r} is not one of: {', '.join(OFFICE_KINDS)}", "kinds")
    return tuple(kinds)


def _selected_offices(item: Mapping[str, Any], offices: Mapping[str, Office]) -> list[str]:
    """The offices a table's ``offices`` (``"*"`` or a list) and ``kinds`` select, in order."""
    wanted = item.get("offices", "*")
    if wanted == "*":
        chosen = list(offices)
    elif isinstance(wanted, list) and all(isinstance(office, str) for office in wanted):
        chosen = list(wanted)
    else:
        raise _BadValue("'offices' must be \"*\" or a list of office ids", "offices")
    kinds = _kinds(item)
    if kinds is None:
        return chosen
    unknown = [office for office in chosen if office not in offices]
    if unknown:
        raise _BadValue(f"'offices' names unknown offices: {', '.join(unknown)}", "offices")
    return [office for office in chosen if any(offices[office].has_kind(k) for k in kinds)]


def _service(item: Mapping[str, Any]) -> ServiceConfig:
    deadline = item.get("deadline_days")
    if not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0:
        raise _BadValue(
            f"service {item.get('id')!r} needs 'deadline_days', a positive whole number of days",
            "deadline_days",
        )
    return ServiceConfig(
        id=_required(item, "id", "service"),
        name=_required(item, "name", "service"),
        form=_required(item, "form", "service"),
        deadline_days=deadline,
        description=str(item.get("description", "")),
    )


def _forms_unique(services: Mapping[str, ServiceConfig]) -> None:
    seen: dict[str, str] = {}
    for index, service in enumerate(services.values()):
        if service.form in seen:
            raise RegionInvalid(
                f"service {service.id} has the form {service.form!r} of service "
                f"{seen[service.form]}; a form identifies one service",
                "services",
                index,
                "form",
            )
        seen[service.form] = service.id


def _handling(
    item: Mapping[str, Any],
    offices: Mapping[str, Office],
    services: Mapping[str, ServiceConfig],
    endpoints: Mapping[str, EndpointConfig],
) -> list[HandlingConfig]:
    service = _required(item, "service", "handling")
    if service not in services:
        raise _BadValue(f"handling names unknown service {service!r}", "service")
    systems = item.get("systems")
    if (
        not isinstance(systems, list)
        or not systems
        or not all(isinstance(system, str) and system for system in systems)
    ):
        raise _BadValue(f"handling of {service} needs 'systems', a list of system names", "systems")
    chosen = _selected_offices(item, offices)
    for office in chosen:
        if office not in offices:
            raise _BadValue(f"handling of {service} names unknown office {office}", "offices")
        for system in systems:
            if f"{system}@{office}" not in endpoints:
                raise _BadValue(
                    f"handling of {service} names system {system!r}, which office {office} "
                    f"({offices[office].name}) does not have",
                    "systems",
                )
    steps = _handling_steps(item, systems)
    return [
        HandlingConfig(service, system, frozenset(chosen), steps.get(system, ()))
        for system in systems
    ]


def _handling_steps(item: Mapping[str, Any], systems: list[str]) -> dict[str, tuple[str, ...]]:
    """Steps of a handling table: one list for every system, or a table of lists by system."""
    steps = item.get("steps", [])
    if isinstance(steps, list):
        return {system: tuple(str(step) for step in steps) for system in systems}
    if isinstance(steps, Mapping):
        strays = sorted(set(steps) - set(systems))
        if strays:
            raise _BadValue(f"'steps' names systems the table does not: {strays}", "steps")
        return {system: tuple(str(step) for step in names) for system, names in steps.items()}
    raise _BadValue("'steps' must be a list of step names or a table of them by system", "steps")


def _endpoint(item: Mapping[str, Any]) -> EndpointConfig:
    name = _required(item, "name", "endpoint")
    system, _, office = name.rpartition("@")
    if not system or not office:
        raise ConfigurationError(f"endpoint name {name!r} must be of the form system@office")
    return EndpointConfig(
        name=name,
        kind=_required(item, "kind", "endpoint"),
        office=office,
        system=system,
        url=_required(item, "url", "endpoint"),
        timeout_s=float(item.get("timeout_s", 10.0)),
        options=dict(item.get("options", {})),
        max_age_s=float(item["max_age_h"]) * 3600 if "max_age_h" in item else None,
    )


def _system_endpoints(
    item: Mapping[str, Any], offices: Mapping[str, Office]
) -> list[EndpointConfig]:
    system = _required(item, "name", "system")
    url = _required(item, "url", "system")
    table = {key: value for key, value in item.items() if key != "kinds"}
    return [
        _endpoint({**table, "name": f"{system}@{office}", "url": url.replace("{office}", office)})
        for office in _selected_offices(item, offices)
    ]


def _route(item: Mapping[str, Any]) -> RouteConfig:
    offices = item.get("offices", "*")
    sources = item.get("sources", "*")
    return RouteConfig(
        name=_required(item, "name", "route"),
        document_type=_required(item, "document_type", "route"),
        target_system=_required(item, "target_system", "route"),
        offices=None if offices == "*" else frozenset(offices),
        sources=None if sources == "*" else frozenset(sources),
        steps=tuple(item.get("steps", ())),
    )


def _inbound(item: Mapping[str, Any]) -> InboundConfig:
    known = {"name", "kind", "url"}
    return InboundConfig(
        name=_required(item, "name", "inbound channel"),
        kind=_required(item, "kind", "inbound channel"),
        url=_required(item, "url", "inbound channel"),
        options={key: value for key, value in item.items() if key not in known},
    )


def _unique(table: str, key: str, items: Sequence[_Keyed]) -> dict[str, _Keyed]:
    found: dict[str, _Keyed] = {}
    for index, item in enumerate(items):
        value = str(getattr(item, key))
        if value in found:
            raise RegionInvalid(f"{table} {value} is declared twice", table, index, key)
        found[value] = item
    return found


def _line_of(text: str, error: ConfigurationError) -> int | None:
    """The line of ``text`` an error is about: its table and key, or an unset variable."""
    if isinstance(error, RegionInvalid):
        return locate(text, error.table, error.index, error.key)
    variable = re.search(r"\$\{[A-Z0-9_]+", error.reason)
    if variable:
        for number, line in enumerate(text.splitlines(), start=1):
            if variable.group(0) in line:
                return number
    return None


_HEADER = re.compile(r"^\s*\[")
_TABLE_ARRAY = re.compile(r"^\s*\[\[\s*(?P<name>[^\]\s]+)\s*\]\]")


def locate(text: str, table: str, index: int, key: str | None = None) -> int | None:
    """The line (from 1) of ``key`` in the ``index``-th ``[[table]]`` of ``text``.

    The table's header line when the key is not written there (a default), None when
    the table itself is not found (data that did not come from this text).
    """
    lines = text.splitlines()
    seen = -1
    for number, line in enumerate(lines, start=1):
        match = _TABLE_ARRAY.match(line)
        if match and match.group("name") == table:
            seen += 1
            if seen == index:
                return _key_line(lines, number, key) if key else number
    return None


def _key_line(lines: list[str], header: int, key: str) -> int:
    pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
    for number in range(header + 1, len(lines) + 1):
        line = lines[number - 1]
        if _HEADER.match(line):
            break
        if pattern.match(line):
            return number
    return header
