"""``corral status APP``: queues and workers at a glance."""

from __future__ import annotations

import dataclasses
import json
import time

import click
from rich.console import Console
from rich.table import Table

from corral.brokers.base import QueueStats, WorkerInfo
from corral.cli.tree import escaped_processes, render, tree_record
from corral.loader import load_app

__all__ = ["status"]

out = Console(highlight=False)


@click.command()
@click.argument("app_ref", metavar="MODULE:APP")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--tree",
    is_flag=True,
    help="Show each worker's process tree, stale pool processes and escaped processes "
    "(escapes are found on this machine only).",
)
def status(app_ref: str, as_json: bool, tree: bool) -> None:
    """Show queue counts (ready, scheduled, running, dead) and the registered workers."""
    app = load_app(app_ref)
    if tree:
        _print_tree(app.broker.workers(), app.broker.now(), as_json=as_json)
        return
    queues = app.broker.queue_stats()
    workers = app.broker.workers()
    now = app.broker.now()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "queues": [dataclasses.asdict(q) for q in queues],
                    "workers": [_worker_record(w, now) for w in workers],
                },
                indent=2,
            )
        )
        return
    out.print(_queue_table(queues))
    out.print(_worker_table(workers, now))


def _print_tree(workers: list[WorkerInfo], now: float, *, as_json: bool) -> None:
    records = [tree_record(w, now=now) for w in workers]
    escaped = escaped_processes(workers)
    if as_json:
        click.echo(json.dumps({"workers": records, "escaped": escaped}, indent=2))
    else:
        out.print(render(records, escaped))


def _worker_record(info: WorkerInfo, now: float) -> dict[str, object]:
    record = dataclasses.asdict(info)
    record["details"] = json.loads(info.details or "{}")
    record["heartbeat_age_s"] = round(now - info.heartbeat_at, 3)
    return record


def _queue_table(queues: list[QueueStats]) -> Table:
    table = Table(title="queues")
    for column in ("queue", "ready", "scheduled", "running", "dead"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for q in queues:
        table.add_row(q.queue, str(q.ready), str(q.scheduled), str(q.running), str(q.dead))
    return table


def _worker_table(workers: list[WorkerInfo], now: float) -> Table:
    table = Table(title="workers")
    for column in ("id", "pid", "host", "queues", "concurrency", "heartbeat", "tasks done", "up"):
        table.add_column(column)
    for w in workers:
        table.add_row(
            w.id,
            str(w.pid),
            w.host,
            ",".join(w.queues),
            str(w.concurrency),
            f"{now - w.heartbeat_at:.1f}s ago",
            str(w.tasks_done),
            _duration(now - w.started_at),
        )
    return table


def _duration(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(max(0.0, seconds)))
