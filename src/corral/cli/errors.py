"""How the CLI reports errors: one clear line and a named exit code, no traceback."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape

from corral.errors import (
    BrokerUnavailable,
    ConfigError,
    CorralError,
    ResultError,
    SupervisorUnavailable,
)
from corral.exitcodes import ExitCode

__all__ = ["exit_code_for", "run_guarded", "stderr"]

stderr = Console(stderr=True, highlight=False)


def exit_code_for(error: CorralError) -> ExitCode:
    """The exit code that names what kind of error ended the command."""
    if isinstance(error, ConfigError):
        return ExitCode.CONFIG
    if isinstance(error, BrokerUnavailable):
        return ExitCode.BROKER_UNAVAILABLE
    if isinstance(error, ResultError):
        return ExitCode.TASK_FAILED
    if isinstance(error, SupervisorUnavailable):
        return ExitCode.SUPERVISOR_UNAVAILABLE
    return ExitCode.FAILURE


def run_guarded(group: click.Group) -> int:
    """Run ``group``; a CorralError becomes a message on stderr and its exit code."""
    try:
        # standalone_mode=False returns ctx.exit()'s code instead of raising it.
        code = group.main(standalone_mode=False)
    except click.exceptions.Abort:
        stderr.print("aborted")
        return ExitCode.FAILURE
    except click.ClickException as error:
        error.show()
        return ExitCode.USAGE
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except CorralError as error:
        # One line whatever the terminal width (soft_wrap), and the message printed as
        # text: an error naming a value like "[red]" must not be read as markup.
        stderr.print(f"[bold red]error:[/] {escape(str(error))}", markup=True, soft_wrap=True)
        return exit_code_for(error)
    return code if isinstance(code, int) else ExitCode.OK
