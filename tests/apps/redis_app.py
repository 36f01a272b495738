"""A test app for worker tests against Redis (tests/redis_worker/).

Workers run ``corral worker tests.apps.redis_app:app`` with CORRAL_BROKER_URL
naming a private redis-server; tests build their own client with
:func:`make_app` (same task names and options), since each test has its own
server. A worker's ``WORKER_TAG`` environment variable names it in what its
tasks record and return, so a test can tell which worker ran a task.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from corral import Corral

PREFIX = "rapp"
# A port nothing listens on: importing the module connects nowhere (a worker always
# sets CORRAL_BROKER_URL), and never to a Redis the tests did not start.
UNSET_URL = "redis://127.0.0.1:1/0"


def noop(x: int) -> int:
    """Returns its argument: measures the system, not the task."""
    return x


def count_run(path: str, sleep_s: float = 0.0) -> str:
    """Append one line per run to ``path`` (to count deliveries), then sleep."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(sleep_s)
    return "done"


def tagged_run(folder: str, slow_s: float) -> str:
    """Record a run by this worker's tag; sleep ``slow_s`` on the worker tagged "slow".

    ``folder/runs`` gets one line per run; ``folder/finished-TAG`` appears when the
    run ends, so a test knows a late result is on its way back to the worker main.
    """
    tag = os.environ.get("WORKER_TAG", "untagged")
    with open(Path(folder) / "runs", "a") as f:
        f.write(f"{tag}\n")
    if tag == "slow":
        time.sleep(slow_s)
    (Path(folder) / f"finished-{tag}").touch()
    return tag


def record(value: object) -> str:
    """Receives anything; a json worker must refuse a pickled ``value`` before this."""
    return type(value).__name__


def make_app(url: str, *, codec: str = "json") -> Corral:
    """An app on ``url`` with every task of this module, named ``rapp.<function>``."""
    app = Corral(url, codec=codec)
    app.task(name=f"{PREFIX}.noop")(noop)
    app.task(name=f"{PREFIX}.count_run", lease_s=2)(count_run)
    app.task(name=f"{PREFIX}.log_run", lease_s=10)(count_run)
    app.task(name=f"{PREFIX}.tagged_run", lease_s=2)(tagged_run)
    app.task(name=f"{PREFIX}.record")(record)
    return app


app = make_app(os.environ.get("CORRAL_BROKER_URL", UNSET_URL))
