"""``corral worker MODULE:app``: run a worker."""

from __future__ import annotations

import os
import sys

import click

from corral.loader import load_app
from corral.worker.config import WorkerConfig
from corral.worker.logs import LEVELS, setup_logging

__all__ = ["worker"]

_DEFAULTS = WorkerConfig(app_ref="-")


@click.command()
@click.argument("app_ref", metavar="MODULE:APP")
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=os.cpu_count() or 1,
    show_default=True,
    help="Pool processes (default: CPU count).",
)
@click.option(
    "-Q",
    "--queues",
    default=",".join(_DEFAULTS.queues),
    show_default=True,
    help="Comma-separated queues to consume.",
)
@click.option(
    "--prefetch",
    type=int,
    default=_DEFAULTS.prefetch,
    show_default=True,
    help="Messages reserved ahead per pool process (their leases are renewed).",
)
@click.option(
    "--max-tasks-per-child",
    type=int,
    default=0,
    show_default=True,
    help="Replace a pool process after this many tasks (0: never).",
)
@click.option(
    "--max-memory-per-child-mb",
    type=int,
    default=0,
    show_default=True,
    help="Replace a pool process whose current RSS exceeds this after a task (0: never).",
)
@click.option(
    "--grace-s",
    type=float,
    default=_DEFAULTS.grace_s,
    show_default=True,
    help="On TERM/INT, how long running tasks may take to finish before they are "
    "handed back and killed.",
)
@click.option(
    "--containment",
    type=click.Choice(["auto", "cgroup", "subreaper"]),
    default="auto",
    show_default=True,
    help="How task process trees are contained: a cgroup v2 per pool process, or the "
    "fallback (subreaper + process groups + CORRAL_UNIT markers). auto: cgroup when writable.",
)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def worker(
    app_ref: str,
    concurrency: int,
    queues: str,
    prefetch: int,
    max_tasks_per_child: int,
    max_memory_per_child_mb: int,
    grace_s: float,
    containment: str,
    log_level: str,
    log_format: str,
) -> None:
    """Run a worker: a main process and CONCURRENCY pool processes.

    \b
    Signals: TERM/INT warm stop (finish running tasks within --grace-s, hand the
    rest back); a second INT or QUIT cold stop (hand everything back now); HUP
    reload (new pool processes import the code fresh; old ones finish and leave).
    Exit codes: 0 stopped cleanly, 3 a pool process died abnormally during the
    run, 69 broker unavailable, 78 configuration error.
    """
    config = WorkerConfig(
        app_ref=app_ref,
        concurrency=concurrency,
        queues=tuple(q.strip() for q in queues.split(",") if q.strip()),
        prefetch=prefetch,
        max_tasks_per_child=max_tasks_per_child,
        max_memory_per_child_mb=max_memory_per_child_mb,
        grace_s=grace_s,
        containment=containment,
        log_level=log_level.upper(),
        log_format=log_format,
    )
    setup_logging(config.log_level, config.log_format, role="main")
    app = load_app(app_ref)
    from corral.worker.worker import Worker

    sys.exit(Worker(app, config).run())
