"""Tasks for the benchmarks: a no-op with one argument."""

from __future__ import annotations

import os

from corral import Corral

app = Corral(os.environ.get("CORRAL_BROKER_URL", "sqlite:///bench.db"))


@app.task
def noop(x: int) -> None:
    """Does nothing: measures the system, not the task."""
