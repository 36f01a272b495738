"""``corral dead APP list|requeue ID|purge`` (dead letters) and ``corral purge APP QUEUE``."""

from __future__ import annotations

import json
import sys
import time

import click
from rich.console import Console
from rich.table import Table

from corral.exitcodes import ExitCode
from corral.loader import load_app
from corral.message import decode_error

__all__ = ["dead", "purge"]

out = Console(highlight=False)


@click.group()
@click.argument("app_ref", metavar="MODULE:APP")
@click.pass_context
def dead(ctx: click.Context, app_ref: str) -> None:
    """Dead letters: messages that will not run again unless requeued."""
    # Only remembered here: the subcommand imports the app, so ``--help`` on a
    # subcommand works even when the app cannot be imported.
    ctx.obj = app_ref


@dead.command("list")
@click.pass_obj
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_dead(app_ref: str, limit: int, as_json: bool) -> None:
    """List dead letters, newest first: why they died and their last error."""
    app = load_app(app_ref)
    letters = app.broker.dead_letters(limit=limit)
    rows = []
    for letter in letters:
        error = decode_error(app.codec, letter.error) if letter.error else None
        rows.append(
            {
                "id": letter.id,
                "task": letter.task,
                "queue": letter.queue,
                "reason": letter.reason,
                "error": f"{error.type_name}: {error.message}" if error else "",
                "attempts": letter.attempts,
                "deliveries": letter.deliveries,
                "died_at": letter.died_at,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"dead letters ({len(rows)})")
    for column in ("id", "task", "queue", "reason", "last error", "runs", "died"):
        table.add_column(column)
    for r in rows:
        died = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(r["died_at"]))))
        table.add_row(
            str(r["id"]),
            str(r["task"]),
            str(r["queue"]),
            str(r["reason"]),
            str(r["error"]),
            str(r["deliveries"]),
            died,
        )
    out.print(table)


@dead.command("requeue")
@click.pass_obj
@click.argument("task_id", metavar="ID")
def requeue(app_ref: str, task_id: str) -> None:
    """Put a dead letter back on its queue."""
    app = load_app(app_ref)
    if not app.broker.requeue_dead(task_id):
        out.print(f"no dead letter {task_id}")
        sys.exit(ExitCode.FAILURE)
    out.print(f"requeued {task_id}")


@dead.command("purge")
@click.pass_obj
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_dead(app_ref: str, yes: bool) -> None:
    """Delete every dead letter."""
    app = load_app(app_ref)
    if not yes:
        click.confirm("delete every dead letter?", abort=True)
    out.print(f"deleted {app.broker.purge_dead()} dead letters")


@click.command()
@click.argument("app_ref", metavar="MODULE:APP")
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(app_ref: str, queue: str, yes: bool) -> None:
    """Delete QUEUE's waiting messages (running ones are left alone)."""
    app = load_app(app_ref)
    if not yes:
        click.confirm(f"delete every waiting message in {queue!r}?", abort=True)
    out.print(f"deleted {app.broker.purge(queue)} messages from {queue}")
