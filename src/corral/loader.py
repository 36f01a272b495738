"""Finding the app named by ``MODULE:ATTRIBUTE`` on the command line."""

from __future__ import annotations

import importlib
import os
import sys

from corral.app import Corral
from corral.errors import ConfigError

__all__ = ["load_app"]


def load_app(ref: str) -> Corral:
    """Import ``module:attribute`` (attribute defaults to ``app``) and return the Corral.

    The current directory is put first on ``sys.path``, as ``python -m`` does, so
    ``corral worker tasks:app`` works from the directory holding ``tasks.py``.
    """
    module_name, _, attribute = ref.partition(":")
    attribute = attribute or "app"
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise ConfigError(f"app {ref!r} is not of the form MODULE:ATTRIBUTE (e.g. tasks:app)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise ConfigError(
                f"cannot import module {module_name!r} (from app {ref!r}): {error}; "
                f"run from the directory that contains it or add that directory to PYTHONPATH"
            ) from None
        raise
    app = getattr(module, attribute, None)
    if not isinstance(app, Corral):
        found = "nothing" if app is None else f"a {type(app).__name__}"
        raise ConfigError(
            f"{module_name}.{attribute} is {found}, not a Corral app; "
            f"name the variable that holds Corral(...), e.g. {module_name}:app"
        )
    return app
