"""``corral run``: supervise the programs of a corral.toml."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from corral.worker.logs import LEVELS, setup_logging

__all__ = ["run"]


@click.command()
@click.option(
    "-c", "--config", "config_path", default="corral.toml", show_default=True,
    type=click.Path(dir_okay=False, path_type=Path), help="The corral.toml to run.",
)  # fmt: skip
@click.option(
    "--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="INFO",
    show_default=True,
)  # fmt: skip
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
def run(config_path: Path, log_level: str, log_format: str) -> None:
    """Run every program of the config; stop them (whole process trees) on TERM/INT.

    \b
    Signals: TERM/INT stop every program (its stop signal, stop_grace_s, then its
    whole tree) and exit; a second TERM/INT or QUIT kills everything now; HUP
    re-reads the config and rolls changed programs to a new generation. As PID 1
    it reaps every orphan and forwards USR1, USR2 and WINCH to the programs.
    Exit codes: 0 every process stopped, 1 something survived, 78 bad config.
    """
    from corral.supervisor.config import load_config
    from corral.supervisor.supervisor import Supervisor

    setup_logging(log_level.upper(), log_format, role="run")
    sys.exit(Supervisor(load_config(config_path)).run())
