"""Tasks for the API and CLI tests, registered on an app built for each test.

``build(url)`` registers module-level functions, so task names are the same
(``tests.apps.api_app.add``, ...) in the test process and in the worker that
imports :mod:`tests.apps.api_worker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral import Corral, Task


def add(x: int, y: int) -> int:
    """The issue's example task."""
    return x + y


def fail(message: str) -> None:
    """Always raises ValueError(message)."""
    raise ValueError(message)


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Return what it was called with (to check arguments survive the trip)."""
    return {"args": list(args), "kwargs": kwargs}


@dataclass(frozen=True)
class ApiApp:
    """An app and its typed tasks."""

    app: Corral
    add: Task[[int, int], int]
    fail: Task[[str], None]
    echo: Task[..., dict[str, Any]]


def build(url: str) -> ApiApp:
    """A fresh app on ``url`` with this module's tasks registered."""
    app = Corral(url)
    return ApiApp(app=app, add=app.task(add), fail=app.task(fail), echo=app.task(echo))
