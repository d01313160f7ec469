"""The region's configuration: offices (the service catalogue), endpoints, routes, inbound channels.

Loaded from TOML, not code, so a regional centre adds an office without a release.
String values may use ``${NAME}`` or ``${NAME:-default}`` to take a value from the
environment (URLs differ between the demo, the tests and production).

A ``[[systems]]`` table declares one kind of domain system for many offices at once;
it expands to one endpoint per office named ``<system>@<office>``, with ``{office}``
in its URL replaced by the office id.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hub.errors import ConfigurationError

_ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")
# An e-Doręczenia address (adres do doręczeń elektronicznych): AE:PL-12345-67890-ABCDE-12.
EDORECZENIA_ADDRESS = re.compile(r"^AE:PL-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9]{2}$")
ESP_ADDRESS = re.compile(r"^/(?P<podmiot>[^/\s]+)/(?P<skrytka>[^/\s]+)$")


@dataclass(frozen=True, slots=True)
class Office:
    """One office of the region, identified by its TERYT code (``WWPPGG_R``, ``WWPP`` or ``WW``)."""

    id: str
    name: str
    kind: str = "gmina"
    esp_address: str = ""
    edoreczenia_address: str = ""

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
        )


_Named = TypeVar("_Named", Office, EndpointConfig)


def load_region(path: Path, environ: Mapping[str, str] | None = None) -> Region:
    """Read and validate a region file.

    Raises:
        ConfigurationError: naming the file and what is wrong in it.
    """
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"region file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"region file {path}: {exc}") from exc
    try:
        return parse_region(_expand(raw, environ))
    except ConfigurationError as exc:
        raise ConfigurationError(f"region file {path}: {exc.reason}") from exc


def parse_region(raw: Mapping[str, Any]) -> Region:
    """Build a :class:`Region` from already-parsed TOML data."""
    offices = _unique("office", [_office(item) for item in raw.get("offices", [])])
    endpoints = [_endpoint(item) for item in raw.get("endpoints", [])]
    for system in raw.get("systems", []):
        endpoints.extend(_system_endpoints(system, offices))
    endpoint_map = _unique("endpoint", endpoints)
    for name, endpoint in endpoint_map.items():
        if endpoint.office not in offices:
            raise ConfigurationError(
                f"endpoint {endpoint.name} names unknown office {endpoint.office}"
            )
        endpoint_map[name] = dataclasses.replace(endpoint, owner=offices[endpoint.office])
    routes = tuple(_route(item) for item in raw.get("routes", []))
    inbound = tuple(_inbound(item) for item in raw.get("inbound", []))
    name = str(raw.get("region", {}).get("name", "region"))
    return Region(
        name=name, offices=offices, endpoints=endpoint_map, routes=routes, inbound=inbound
    )


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
        raise ConfigurationError(f"{what} {dict(item)!r} needs a non-empty string '{key}'")
    return value


def _office(item: Mapping[str, Any]) -> Office:
    office = Office(
        id=_required(item, "id", "office"),
        name=_required(item, "name", "office"),
        kind=str(item.get("kind", "gmina")),
        esp_address=str(item.get("esp", "")),
        edoreczenia_address=str(item.get("edoreczenia", "")),
    )
    if office.esp_address:
        _esp_parts(office.esp_address)
    if office.edoreczenia_address and not EDORECZENIA_ADDRESS.match(office.edoreczenia_address):
        raise ConfigurationError(
            f"e-Doręczenia address {office.edoreczenia_address!r} of office {office.id} "
            "is not of the form AE:PL-XXXXX-XXXXX-XXXXX-XX"
        )
    return office


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
    wanted = item.get("offices", "*")
    office_ids = list(offices) if wanted == "*" else list(wanted)
    return [
        _endpoint(
            {
                **item,
                "name": f"{system}@{office}",
                "url": str(item["url"]).replace("{office}", office),
            }
        )
        for office in office_ids
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


def _unique(what: str, items: Sequence[_Named]) -> dict[str, _Named]:
    found: dict[str, _Named] = {}
    for item in items:
        key = item.id if isinstance(item, Office) else item.name
        if key in found:
            raise ConfigurationError(f"{what} {key} is declared twice")
        found[key] = item
    return found
