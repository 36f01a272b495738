"""Huey's embedded mode, ``SqliteHuey``: the only peer with an SQLite store, beside
corral's SQLite broker. A file in the run's working directory, Huey's defaults otherwise
(its consumer polls the table; a task is deleted from it when taken, before it runs).
The round trip polls for the result (from 50 ms up, Huey's default for SQLite).
"""

from __future__ import annotations

import os

from huey import SqliteHuey
from huey_bench import HueyBench

PACKAGES = ("huey",)
WORKDIR = os.environ["BENCH_WORKDIR"]  # set by run.py before import (see its docstring)
SKIPPED = {"memory": "measured on Redis only"}
huey = SqliteHuey("bench", filename=os.path.join(WORKDIR, "huey.db"))
BENCH = HueyBench.on(huey, "huey_sqlite_bench.huey")
enqueue, bulk = BENCH.enqueue, BENCH.bulk
processing, round_trip = BENCH.processing, BENCH.round_trip
