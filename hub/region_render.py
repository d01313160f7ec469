"""Writing a :class:`~hub.region.Region` back as a region file (the demo writes the offices it
chose; a reloaded region can be compared with the one it replaced).

Everything is written out expanded: endpoints one by one, handling one table per system
with its offices listed, so the file loads back into an equal region.
"""

from __future__ import annotations

import json
from typing import Any

from hub.region import (
    EndpointConfig,
    HandlingConfig,
    InboundConfig,
    Office,
    Region,
    RouteConfig,
    ServiceConfig,
)


def render_region(region: Region) -> str:
    """The region as TOML that :func:`hub.region.load_region` reads back as an equal region."""
    lines = [f"[region]\nname = {_quote(region.name)}\n"]
    lines += [_office(office) for office in region.offices.values()]
    lines += [_service(service) for service in region.services.values()]
    lines += [_endpoint(endpoint) for endpoint in region.endpoints.values()]
    lines += [_handling(handling, region) for handling in region.handling]
    lines += [_route(route) for route in region.routes]
    lines += [_inbound(channel) for channel in region.inbound]
    return "\n".join(lines)


def _office(office: Office) -> str:
    return (
        f"[[offices]]\nid = {_quote(office.id)}\nname = {_quote(office.name)}\n"
        f"kind = {_quote(office.kind)}\nesp = {_quote(office.esp_address)}\n"
        f"edoreczenia = {_quote(office.edoreczenia_address)}\n"
    )


def _service(service: ServiceConfig) -> str:
    return (
        f"[[services]]\nid = {_quote(service.id)}\nname = {_quote(service.name)}\n"
        f"form = {_quote(service.form)}\ndeadline_days = {service.deadline_days}\n"
        f"description = {_quote(service.description)}\n"
    )


def _endpoint(endpoint: EndpointConfig) -> str:
    text = (
        f"[[endpoints]]\nname = {_quote(endpoint.name)}\nkind = {_quote(endpoint.kind)}\n"
        f"url = {_quote(endpoint.url)}\ntimeout_s = {endpoint.timeout_s}\n"
    )
    if endpoint.max_age_s is not None:
        text += f"max_age_h = {endpoint.max_age_s / 3600}\n"
    return text + f"options = {_value(dict(endpoint.options))}\n"


def _handling(handling: HandlingConfig, region: Region) -> str:
    # Offices in catalogue order, so the file reads like the region it came from.
    offices = [office for office in region.offices if office in handling.offices]
    return (
        f"[[handling]]\nservice = {_quote(handling.service)}\n"
        f"systems = {_value([handling.system])}\noffices = {_value(offices)}\n"
        f"steps = {_value(list(handling.steps))}\n"
    )


def _route(route: RouteConfig) -> str:
    offices = "*" if route.offices is None else sorted(route.offices)
    sources = "*" if route.sources is None else sorted(route.sources)
    return (
        f"[[routes]]\nname = {_quote(route.name)}\n"
        f"document_type = {_quote(route.document_type)}\n"
        f"target_system = {_quote(route.target_system)}\noffices = {_value(offices)}\n"
        f"sources = {_value(sources)}\nsteps = {_value(list(route.steps))}\n"
    )


def _inbound(channel: InboundConfig) -> str:
    options = "".join(f"{key} = {_value(value)}\n" for key, value in channel.options.items())
    return (
        f"[[inbound]]\nname = {_quote(channel.name)}\nkind = {_quote(channel.kind)}\n"
        f"url = {_quote(channel.url)}\n{options}"
    )


def _value(value: Any) -> str:
    """``value`` as TOML: JSON scalars and arrays are TOML too; tables become inline tables."""
    if isinstance(value, dict):
        items = ", ".join(f"{_quote(str(key))} = {_value(item)}" for key, item in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _quote(text: str) -> str:
    # JSON string syntax is valid TOML basic-string syntax; "${...}" stays literal.
    return json.dumps(text, ensure_ascii=False)
