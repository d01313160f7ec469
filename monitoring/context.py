"""What every monitoring route reads from the app: the store, the settings, the region."""

from __future__ import annotations

from typing import cast

from flask import current_app

from hub.region import Region
from hub.settings import Settings
from hub.store.repository import Store
from hub.web import current_region
from monitoring.scope import Scope


def store() -> Store:
    """The app's store."""
    return cast(Store, current_app.config["HUB_STORE"])


def settings() -> Settings:
    """The app's settings."""
    return cast(Settings, current_app.config["HUB_SETTINGS"])


def region() -> Region:
    """The region (offices and endpoints) as every door of this process sees it now."""
    return current_region()


def endpoint_names(scope: Scope | None = None) -> list[str]:
    """The region's endpoints in ``scope`` (the store may know more, which the queries add)."""
    names = list(region().endpoints)
    return [name for name in names if scope is None or scope.owns_endpoint(name)]


def office_names(scope: Scope | None = None) -> dict[str, str]:
    """Office id → name, from the region's catalogue, of the offices in ``scope``."""
    return {
        office.id: office.name
        for office in region().offices.values()
        if scope is None or scope.owns_office(office.id)
    }
