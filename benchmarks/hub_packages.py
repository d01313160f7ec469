"""Take the hub's ``mappings`` package before a benchmark's own folder can shadow it.

A benchmark run as a script has ``benchmarks/`` first on ``sys.path``, where
``mappings.py`` (the mapping benchmark) would be found in place of the package that the
hub's route steps import (``hub.runtime`` → ``hub.translate`` → ``mappings``). Importing
this module first loads the package with that folder left out of the path.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent


def import_mappings_package() -> None:
    """Import ``mappings`` from anywhere on ``sys.path`` but ``benchmarks/``."""
    loaded = sys.modules.get("mappings")
    if loaded is not None and hasattr(loaded, "__path__"):
        return
    saved = list(sys.path)
    sys.path[:] = [entry for entry in saved if Path(entry or ".").resolve() != BENCHMARKS_DIR]
    try:
        importlib.import_module("mappings")
    finally:
        sys.path[:] = saved


import_mappings_package()
