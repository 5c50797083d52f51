"""app.py imported afresh under a stage's environment, as `chalice deploy`
imports it with the stage's environment_variables set: the decorators read
queue names, batch sizes and concurrency caps from the settings at import."""
from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

from chalice import Chalice

from chalicelib.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
_modules = itertools.count()


def load_app(environ: Mapping[str, str]) -> Chalice:
    """A new module of app.py, imported with every SLUICE_* variable of this
    process replaced by `environ`; the environment and the settings cache are
    as they were afterwards."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SLUICE_")}
    with mock.patch.dict(os.environ, {**kept, **environ}, clear=True):
        get_settings.cache_clear()
        try:
            spec = importlib.util.spec_from_file_location(f"sluice_app_{next(_modules)}", ROOT / "app.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            get_settings.cache_clear()
    return module.app
