"""``corral ctl``: talk to a running ``corral run`` over its control socket."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from corral.exitcodes import ExitCode

__all__ = ["ctl"]

out = Console(highlight=False, soft_wrap=True)


@click.group()
@click.option(
    "-c", "--config", "config_path", default="corral.toml", show_default=True,
    type=click.Path(dir_okay=False, path_type=Path), help="The corral.toml of the corral run.",
)  # fmt: skip
@click.option("--timeout-s", type=float, default=None, help="Give up waiting after this.")
@click.option("--json", "as_json", is_flag=True, help="Print the supervisor's answer as JSON.")
@click.pass_context
def ctl(ctx: click.Context, config_path: Path, timeout_s: float | None, as_json: bool) -> None:
    """Control a running `corral run`: status, start, stop, restart, reload, signal, tail.

    \b
    Exit codes: 0 done; 1 the supervisor refused or the command failed (a program
    not running after start/reload); 5 no corral run answers; 78 bad config.
    """
    ctx.obj = {"config": config_path, "timeout_s": timeout_s, "json": as_json}


def _call(ctx: click.Context, command: str, **args: Any) -> dict[str, Any]:
    from corral.supervisor.control import request

    socket_path = _control_socket(ctx.obj["config"])
    answer = request(socket_path, command, args, timeout_s=ctx.obj["timeout_s"])
    if ctx.obj["json"]:
        click.echo(json.dumps(answer, indent=2))
        sys.exit(ExitCode.OK if answer.get("ok") else ExitCode.FAILURE)
    if not answer.get("ok"):
        click.echo(f"error: {answer.get('error', 'failed')}", err=True)
        sys.exit(ExitCode.FAILURE)
    return answer


@ctl.command()
@click.argument("name", default="")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, name: str, as_json: bool) -> None:
    """Every process of every program: pid, generation, state, uptime, RSS; STALE if old."""
    answer = _call(ctx, "status", name=name)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    table = Table(title=f"corral run {answer['pid']} ({answer['containment']})")
    for column in ("program", "state", "gen", "pid", "uptime", "processes"):
        table.add_column(column)
    for instance in answer["instances"]:
        table.add_row(
            instance["name"],
            instance["state"],
            str(instance["generation"]),
            str(instance["pid"] or "-"),
            f"{instance['uptime_s']:.0f}s",
            _processes(instance),
        )
    out.print(table)


def _control_socket(config_path: Path) -> Path:
    """The control socket of the config, found even when the file is broken now (a reload
    of a broken file must still be reported by the running supervisor, and status work)."""
    import tomllib

    from corral.errors import ConfigError
    from corral.supervisor.config import RunConfig, load_config

    try:
        return Path(load_config(config_path).run.control_socket)
    except ConfigError:
        pass
    try:
        section = tomllib.loads(config_path.read_text()).get("corral", {})
        path = Path(str(section.get("control_socket", RunConfig().control_socket)))
    except (OSError, tomllib.TOMLDecodeError):
        path = Path(RunConfig().control_socket)
    return path if path.is_absolute() else config_path.resolve().parent / path


def _processes(instance: dict[str, Any]) -> str:
    lines = []
    for row in instance["processes"]:
        stale = " STALE" if row["pid"] in instance["stale"] else ""
        mark = "*" if row["main"] else " "
        lines.append(
            f"{mark}{row['pid']} g{row['generation']} {row['rss_bytes'] >> 20}MB "
            f"{row['cmdline'][:60]}{stale}"
        )
    return "\n".join(lines) or instance["last_exit"]


def _simple(command: str, doc: str) -> click.Command:
    @click.argument("name", default="all")
    @click.pass_context
    def action(ctx: click.Context, name: str) -> None:
        answer = _call(ctx, command, name=name)
        for instance, state in answer.get("instances", {}).items():
            out.print(f"{instance}: {state}")

    action.__doc__ = doc
    return ctl.command(command)(action)


_simple("start", "Start NAME (a program, program:index, or all); wait until it runs.")
_simple("stop", "Stop NAME; wait until its whole process tree is gone.")
_simple("restart", "Stop NAME completely, then start it.")


@ctl.command()
@click.option("--all", "everything", is_flag=True, help="Restart every program, changed or not.")
@click.pass_context
def reload(ctx: click.Context, everything: bool) -> None:
    """Re-read the config; roll changed programs to a new generation (start new, wait until
    ready, stop old). Returns when no process of an older generation remains."""
    answer = _call(ctx, "reload", all=everything)
    for key in ("reloaded", "added", "removed", "unchanged"):
        if answer.get(key):
            out.print(f"{key}: {', '.join(answer[key])}")
    failed = [n for n, s in answer.get("instances", {}).items() if s not in ("running", "exited")]
    if failed:
        click.echo(f"error: not running after the reload: {', '.join(failed)}", err=True)
        sys.exit(ExitCode.FAILURE)


@ctl.command("signal")
@click.argument("name")
@click.argument("signal_name", metavar="SIGNAL")
@click.pass_context
def signal_(ctx: click.Context, name: str, signal_name: str) -> None:
    """Send SIGNAL (e.g. HUP, USR1) to NAME's main processes."""
    answer = _call(ctx, "signal", name=name, signal=signal_name)
    out.print(f"signalled: {', '.join(answer['signalled']) or 'nothing running'}")


@ctl.command()
@click.pass_context
def shutdown(ctx: click.Context) -> None:
    """Stop every program and the supervisor; wait until it is gone."""
    _call(ctx, "shutdown")
    socket_path = _control_socket(ctx.obj["config"])
    deadline = time.monotonic() + (ctx.obj["timeout_s"] or 600.0)
    while socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    out.print("corral run stopped")


@ctl.command()
@click.argument("name")
@click.option("-n", "lines", type=int, default=20, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing what is written.")
@click.option("--stderr", "which", flag_value="err", default=False, help="The stderr log.")
@click.pass_context
def tail(ctx: click.Context, name: str, lines: int, follow: bool, which: str) -> None:
    """Print the end of NAME's log (stdout, or --stderr); -f follows it across rotations."""
    from corral.supervisor.config import load_config
    from corral.supervisor.logfile import follow as follow_file
    from corral.supervisor.logfile import tail_lines

    config = load_config(ctx.obj["config"])
    out_path, err_path = config.log_files(name.partition(":")[0])
    path = Path(err_path if which == "err" else out_path)
    for line in tail_lines(path, lines):
        click.echo(line)
    if follow:
        for chunk in follow_file(path):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
