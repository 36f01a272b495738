"""``corral``: the command line. One module per command group; this one joins them."""

from __future__ import annotations

import sys

import click

from corral.cli.ctl import ctl
from corral.cli.dead import dead, purge
from corral.cli.doctor import doctor
from corral.cli.errors import run_guarded
from corral.cli.run import run
from corral.cli.status import status
from corral.cli.tasks import result, revoke, send
from corral.cli.worker import worker

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="corral")
def cli() -> None:
    """corral: background tasks where no task is lost and no process strays."""


for command in (worker, send, result, status, revoke, dead, purge, doctor, run, ctl):
    cli.add_command(command)


def main() -> None:
    """Console entry point: run the CLI, turning corral errors into named exit codes."""
    sys.exit(run_guarded(cli))


if __name__ == "__main__":
    main()
