"""What every monitoring route reads from the app: the store, the settings, the region."""

from __future__ import annotations

from typing import cast

from flask import current_app

from hub.errors import ConfigurationError
from hub.region import Region, load_region
from hub.settings import Settings
from hub.store.repository import Store


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


def endpoint_names() -> list[str]:
    """The region's endpoints (the store may know more, which the queries add)."""
    known = region()
    return list(known.endpoints) if known else []


def office_names() -> dict[str, str]:
    """Office id → name, from the region's catalogue."""
    known = region()
    return {office.id: office.name for office in known.offices.values()} if known else {}
