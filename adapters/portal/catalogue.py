"""The service catalogue (WKUP) for the regional portal: read-only JSON, from the current region.

- ``GET /api/catalogue/offices``: offices, in catalogue order; ``kind`` filters (``gmina``
  stands for every gmina kind), ``page`` and ``per_page`` (at most 1000, default 100) page;
- ``GET /api/catalogue/offices/<teryt>``: one office;
- ``GET /api/catalogue/offices/<teryt>/services``: what the office takes, with the systems
  that handle each service and its statutory deadline;
- ``GET /api/catalogue/services``: every service, with how many offices take it.

The region is the one the routing workers use: a changed region file is taken up within
``region_reload_s``. Endpoint URLs are never shown (they may carry credentials). Errors
are RFC 7807 problem documents (``urn:hub:problem:unknown-office``, ``...:bad-query``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request, url_for

from hub.region import OFFICE_KINDS, Office, Region, ServiceConfig
from hub.routing import service_routes
from hub.web import current_region, problem

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000

blueprint = Blueprint("catalogue", __name__, url_prefix="/api/catalogue")


def register(app: Flask) -> None:
    """Plug the catalogue into the hub's HTTP app (entry point ``hub.web``)."""
    app.register_blueprint(blueprint)


def _region() -> Region:
    return current_region()


@blueprint.get("/offices")
def offices() -> Response | tuple[Response, int]:
    """A page of offices, optionally of one kind."""
    kind = request.args.get("kind")
    if kind is not None and kind not in OFFICE_KINDS:
        return problem(400, "bad-query", f"kind must be one of: {', '.join(OFFICE_KINDS)}")
    paging = _paging()
    if paging is None:
        return problem(
            400, "bad-query", f"page must be 1 or more and per_page from 1 to {MAX_PER_PAGE}"
        )
    page, per_page = paging
    chosen = [
        office for office in _region().offices.values() if kind is None or office.has_kind(kind)
    ]
    start = (page - 1) * per_page
    return jsonify(
        {
            "offices": [_office(office) for office in chosen[start : start + per_page]],
            "total": len(chosen),
            "page": page,
            "per_page": per_page,
        }
    )


@blueprint.get("/offices/<teryt>")
def office(teryt: str) -> Response | tuple[Response, int]:
    """One office of the catalogue."""
    found = _region().offices.get(teryt)
    if found is None:
        return _unknown_office(teryt)
    return jsonify(_office(found))


@blueprint.get("/offices/<teryt>/services")
def office_services(teryt: str) -> Response | tuple[Response, int]:
    """The services an office takes, with the systems that handle each."""
    region = _region()
    found = region.offices.get(teryt)
    if found is None:
        return _unknown_office(teryt)
    offered = []
    for service in region.services.values():
        routes = service_routes(region, service, teryt)
        if routes:
            systems = [_system(region, route.target_system, teryt) for route in routes]
            offered.append({**_service(service), "systems": systems})
    return jsonify({"office": _office(found), "services": offered})


@blueprint.get("/services")
def services() -> Response:
    """Every service of the catalogue, with how many offices take it."""
    region = _region()
    listed = [
        {
            **_service(service),
            "offices": sum(
                1 for office in region.offices if service_routes(region, service, office)
            ),
        }
        for service in region.services.values()
    ]
    return jsonify({"services": listed})


def _paging() -> tuple[int, int] | None:
    try:
        page = int(request.args.get("page", "1"))
        per_page = int(request.args.get("per_page", str(DEFAULT_PER_PAGE)))
    except ValueError:
        return None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        return None
    return page, per_page


def _office(office: Office) -> dict[str, Any]:
    return {
        "id": office.id,
        "name": office.name,
        "kind": office.kind,
        "esp_address": office.esp_address,
        "edoreczenia_address": office.edoreczenia_address,
        "services_url": url_for("catalogue.office_services", teryt=office.id),
    }


def _service(service: ServiceConfig) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "form": service.form,
        "deadline_days": service.deadline_days,
        "description": service.description,
    }


def _system(region: Region, system: str, office: str) -> dict[str, Any]:
    endpoint = region.endpoints.get(f"{system}@{office}")
    return {
        "system": system,
        "endpoint": f"{system}@{office}",
        "kind": endpoint.kind if endpoint else None,
    }


def _unknown_office(teryt: str) -> tuple[Response, int]:
    return problem(404, "unknown-office", f"office {teryt!r} is not in the service catalogue")
