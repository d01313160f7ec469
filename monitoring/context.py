"""What every monitoring route reads from the app: the store, the settings, the region."""

from __future__ import annotations

from typing import cast

from flask import current_app

from hub.errors import ConfigurationError
from hub.region import Region, load_region
from hub.settings import Settings
from hub.store.repository import Store
from monitoring.scope import Scope


def store() -> Store:
    """The app's store."""
    return cast(Store, current_app.config["HUB_STORE"])


def settings() -> Settings:
    """The app's settings."""
    return cast(Settings, current_app.config["HUB_SETTINGS"])


def region() -> Region | None:
    """The region (offices and endpoints), read once; None if its file cannot be read."""
    if "HUB_REGION" not in current_app.config:
        try:
            current_app.config["HUB_REGION"] = load_region(settings().region_path)
        except ConfigurationError:
            current_app.config["HUB_REGION"] = None
    return cast(Region | None, current_app.config["HUB_REGION"])


def endpoint_names(scope: Scope | None = None) -> list[str]:
    """The region's endpoints in ``scope`` (the store may know more, which the queries add)."""
    known = region()
    names = list(known.endpoints) if known else []
    return [name for name in names if scope is None or scope.owns_endpoint(name)]


def office_names(scope: Scope | None = None) -> dict[str, str]:
    """Office id → name, from the region's catalogue, of the offices in ``scope``."""
    known = region()
    offices = known.offices.values() if known else []
    return {
        office.id: office.name
        for office in offices
        if scope is None or scope.owns_office(office.id)
    }
