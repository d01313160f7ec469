"""Routes and the router: which endpoint gets a document, and what is done to it on the way.

A route matches a document type, the addressee office and the source; its steps run in
order, each ``Envelope -> Envelope`` (like a processor chain), and its target system at
the addressee office names the endpoint. Several matching routes fan a document out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hub.envelope import Envelope
from hub.errors import ConfigurationError, UnroutableDocument
from hub.region import Region, RouteConfig
from hub.xml import parse_document

Step = Callable[[Envelope], Envelope]


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
        for route in region.routes:
            self._resolve_steps(route)

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
            raise UnroutableDocument(
                f"no route handles document type {envelope.document_type!r} for office {office}"
            )
        return [self._decision(route, office) for route in matching]

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
    """The region's routes that match ``envelope`` (an inbound endpoint can ask early)."""
    return [route for route in region.routes if _matches(route, envelope)]


def _matches(route: RouteConfig, envelope: Envelope) -> bool:
    return (
        route.document_type == envelope.document_type
        and (route.offices is None or envelope.destination.office in route.offices)
        and (route.sources is None or envelope.source in route.sources)
    )
