"""Routes and the router: which endpoint gets a document, and what is done to it on the way.

A route matches a document type, the addressee office and the source; its steps run in
order, each ``Envelope -> Envelope`` (like a processor chain), and its target system at
the addressee office names the endpoint. Several matching routes fan a document out.

Routes come from two places: the region's ``[[routes]]`` tables, and the service
catalogue, where each system that handles a service at an office adds one. A document's
service is the one whose form template is its document type, or the one its ``service``
header names. An explicit route to a system takes precedence over the catalogue's route
to the same system (its steps win), so a document is never sent twice to one endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hub.envelope import Envelope
from hub.errors import ConfigurationError, UnroutableDocument
from hub.region import Region, RouteConfig, ServiceConfig
from hub.xml import parse_document

Step = Callable[[Envelope], Envelope]

# An envelope header naming the catalogue service a document is filed under, for
# documents whose type alone does not say (a general form used for several services).
SERVICE_HEADER = "service"


def check_well_formed(envelope: Envelope) -> Envelope:
    """Refuse a body that is not safe, well-formed XML (raises ``MalformedDocument``)."""
    parse_document(envelope.body)
    return envelope


BUILTIN_STEPS: Mapping[str, Step] = {"check_well_formed": check_well_formed}


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """One destination for a document: the route that chose it and the steps to apply."""

    route: str
    endpoint: str
    steps: tuple[Step, ...]

    def apply(self, envelope: Envelope) -> Envelope:
        """Run the route's steps over ``envelope`` in order."""
        for step in self.steps:
            envelope = step(envelope)
        return envelope


class Router:
    """Decides the destinations of documents from the region's routes."""

    def __init__(self, region: Region, steps: Mapping[str, Step] = BUILTIN_STEPS) -> None:
        self._region = region
        self._steps = dict(steps)
        for route in (*region.routes, *region.catalogue_routes()):
            self._resolve_steps(route)

    @property
    def region(self) -> Region:
        """The region this router decides from."""
        return self._region

    def decide(self, envelope: Envelope) -> list[RouteDecision]:
        """Every destination of ``envelope``.

        Raises:
            UnroutableDocument: no route matches, or the addressee office lacks the target system.
        """
        office = envelope.destination.office
        if office not in self._region.offices:
            raise UnroutableDocument(f"addressee office {office!r} is not in the service catalogue")
        matching = routes_for(self._region, envelope)
        if not matching:
            raise UnroutableDocument(unroutable_reason(self._region, envelope))
        return [self._decision(route, office) for route in matching]

    def service(self, envelope: Envelope) -> ServiceConfig | None:
        """The catalogue service ``envelope`` is filed under (None for other documents)."""
        return service_of(self._region, envelope)

    def endpoints(self) -> Sequence[str]:
        """Every endpoint name of the region (one delivery queue each)."""
        return list(self._region.endpoints)

    def _decision(self, route: RouteConfig, office: str) -> RouteDecision:
        endpoint = f"{route.target_system}@{office}"
        if endpoint not in self._region.endpoints:
            raise UnroutableDocument(
                f"route {route.name} targets system {route.target_system!r}, "
                f"which office {office} does not have"
            )
        return RouteDecision(route.name, endpoint, self._resolve_steps(route))

    def _resolve_steps(self, route: RouteConfig) -> tuple[Step, ...]:
        unknown = [name for name in route.steps if name not in self._steps]
        if unknown:
            raise ConfigurationError(f"route {route.name} names unknown steps: {unknown}")
        return tuple(self._steps[name] for name in route.steps)


def routes_for(region: Region, envelope: Envelope) -> list[RouteConfig]:
    """The routes that match ``envelope``: explicit ones, then the catalogue's.

    An inbound endpoint can ask early; none match a document whose ``service`` header
    names a service the catalogue lacks.
    """
    named = envelope.headers.get(SERVICE_HEADER)
    if named is not None and named not in region.services:
        return []
    document_type = _document_type(region, envelope)
    return _with_catalogue(
        [route for route in region.routes if _matches(route, envelope, document_type)],
        [route for route in region.catalogue_routes() if _matches(route, envelope, document_type)],
    )


def service_routes(region: Region, service: ServiceConfig, office: str) -> list[RouteConfig]:
    """The routes a filing of ``service`` to ``office`` takes, whatever channel it came by."""

    def takes(route: RouteConfig) -> bool:
        return route.document_type == service.form and (
            route.offices is None or office in route.offices
        )

    return _with_catalogue(
        [route for route in region.routes if takes(route)],
        [route for route in region.catalogue_routes() if takes(route)],
    )


def _with_catalogue(explicit: list[RouteConfig], catalogue: list[RouteConfig]) -> list[RouteConfig]:
    """Explicit routes, then the catalogue's to systems no explicit route (or earlier one) took."""
    taken = {route.target_system for route in explicit}
    implied: list[RouteConfig] = []
    for route in catalogue:
        if route.target_system not in taken:
            taken.add(route.target_system)
            implied.append(route)
    return explicit + implied


def service_of(region: Region, envelope: Envelope) -> ServiceConfig | None:
    """The catalogue service ``envelope`` is filed under, by its header or its form.

    Raises:
        UnroutableDocument: the ``service`` header names a service the catalogue lacks.
    """
    named = envelope.headers.get(SERVICE_HEADER)
    if named is None:
        return region.service_by_form(envelope.document_type)
    if named not in region.services:
        raise UnroutableDocument(f"service {named!r} is not in the service catalogue")
    return region.services[named]


def unroutable_reason(region: Region, envelope: Envelope) -> str:
    """Why no route takes ``envelope``, naming its service (if known) and the office."""
    office_id = envelope.destination.office
    office = region.offices.get(office_id)
    if office is None:
        return f"addressee office {office_id!r} is not in the service catalogue"
    service = service_of(region, envelope)
    if service is None:
        return (
            f"no service or route handles document type {envelope.document_type!r} "
            f"for office {office_id}"
        )
    return (
        f"service {service.id} ({service.name}) is not handled by office {office_id} "
        f"({office.name})"
    )


def _document_type(region: Region, envelope: Envelope) -> str:
    service = service_of(region, envelope)
    return service.form if service is not None else envelope.document_type


def _matches(route: RouteConfig, envelope: Envelope, document_type: str) -> bool:
    return (
        route.document_type == document_type
        and (route.offices is None or envelope.destination.office in route.offices)
        and (route.sources is None or envelope.source in route.sources)
    )
