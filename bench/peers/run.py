"""Run one workload of one system and print its figures as one JSON line.

    <venv>/bin/python bench/peers/run.py MODULE WORKLOAD --url redis://... [options]

MODULE is a system module in this folder (``celery_bench``, ``raw_redis``, ...), run
with the python of that system's virtualenv; WORKLOAD is one of ``enqueue``, ``bulk``,
``processing``, ``round_trip``, ``memory``, ``floor``. The module is imported by its
own name (not run as ``__main__``) so that task names match what its workers import;
its connection settings come from ``BENCH_REDIS_URL`` and ``BENCH_WORKDIR``, which
this runner sets first because the peers' worker commands can only name a module.
A module without the workload prints ``{"skipped": reason}`` from its ``SKIPPED``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
from pathlib import Path

import harness

WORKLOADS = ("enqueue", "bulk", "processing", "round_trip", "memory", "floor")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--url", required=True)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--memory-sends", type=int, default=50_000)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--containment", default="auto")
    parser.add_argument("--budget-s", type=float, default=30.0)
    return parser.parse_args()


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in packages}


def main() -> None:
    args = parse()
    os.environ["BENCH_REDIS_URL"] = args.url
    os.environ["BENCH_WORKDIR"] = str(args.workdir)
    harness.become_subreaper()
    module = importlib.import_module(args.module)
    options = harness.Options(
        url=args.url, tasks=args.tasks, round_trips=args.round_trips,
        memory_sends=args.memory_sends, workdir=args.workdir,
        containment=args.containment, budget_s=args.budget_s,
    )  # fmt: skip
    report: dict[str, object] = {"versions": versions(getattr(module, "PACKAGES", ()))}
    workload = getattr(module, args.workload, None)
    if workload is None:
        report["skipped"] = getattr(module, "SKIPPED", {}).get(args.workload, "not measured")
    else:
        report["figures"] = workload(options)
        report["notes"] = getattr(module, "NOTES", {}).get(args.workload, "")
    print(json.dumps(report), flush=True)
    harness.reap_orphans()


if __name__ == "__main__":
    main()
