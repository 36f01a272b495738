"""``corral send``, ``corral result``, ``corral revoke``: one task at a time."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from corral.errors import ConfigError, ResultTimeout
from corral.exitcodes import ExitCode
from corral.loader import load_app

__all__ = ["result", "revoke", "send"]

out = Console(highlight=False)


def _json_arg(text: str, option: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{option} is not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, kind):
        raise ConfigError(f"{option} must be a JSON {'array' if kind is list else 'object'}")
    return value


@click.command()
@click.argument("app_ref", metavar="MODULE:APP")
@click.argument("task_name", metavar="TASK")
@click.option(
    "--args", "args_json", default="[]", help="Positional arguments as JSON, e.g. '[1, 2]'."
)
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--queue", default=None, help="Override the task's queue.")
@click.option("--priority", type=int, default=None, help="Override the task's priority.")
@click.option("--countdown-s", type=float, default=None, help="Run no sooner than this from now.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout-s", type=float, default=None, help="With --wait: give up after this.")
def send(
    app_ref: str,
    task_name: str,
    args_json: str,
    kwargs_json: str,
    queue: str | None,
    priority: int | None,
    countdown_s: float | None,
    wait: bool,
    timeout_s: float | None,
) -> None:
    """Send TASK (a name the app registers) and print its id."""
    app = load_app(app_ref)
    task = app.get_task(task_name)
    handle = task.send(
        args=_json_arg(args_json, "--args", list),
        kwargs=_json_arg(kwargs_json, "--kwargs", dict),
        queue=queue,
        priority=priority,
        countdown_s=countdown_s,
    )
    out.print(handle.id)
    if wait:
        _print_result(handle.get(timeout_s=timeout_s))


@click.command()
@click.argument("app_ref", metavar="MODULE:APP")
@click.argument("task_id", metavar="ID")
@click.option("--wait/--no-wait", default=False, help="Wait for the task to finish.")
@click.option("--timeout-s", type=float, default=None, help="With --wait: give up after this.")
def result(app_ref: str, task_id: str, wait: bool, timeout_s: float | None) -> None:
    """Print a task's state, and its result when it has one.

    Exit code 0 when the task succeeded, 4 when it failed, was revoked or has no
    result yet.
    """
    app = load_app(app_ref)
    state = app.task_state(task_id)
    if not wait and not state.final:
        out.print(state.value)
        sys.exit(ExitCode.TASK_FAILED)
    try:
        value = app.wait_result(task_id, timeout_s=timeout_s if wait else 0.0)
    except ResultTimeout:
        out.print(app.task_state(task_id).value)
        sys.exit(ExitCode.TASK_FAILED)
    _print_result(value)


@click.command()
@click.argument("app_ref", metavar="MODULE:APP")
@click.argument("task_id", metavar="ID")
@click.option(
    "--terminate", is_flag=True, help="Also kill the task (and its process tree) if it runs."
)
def revoke(app_ref: str, task_id: str, terminate: bool) -> None:
    """Revoke a pending task (with --terminate, a running one too)."""
    app = load_app(app_ref)
    if app.revoke(task_id, terminate=terminate):
        out.print(f"revoked {task_id}")
    else:
        out.print(f"{task_id} is unknown or already finished; nothing revoked")
        sys.exit(ExitCode.FAILURE)


def _print_result(value: Any) -> None:
    try:
        out.print_json(json.dumps(value))
    except TypeError:
        out.print(repr(value))
