"""``[worker.NAME]``: a shortcut for a program that runs ``corral worker``."""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from typing import Any

from corral.supervisor.config_fields import FieldSpec, convert_table, field_specs
from corral.supervisor.config_schema import (
    WORKER_PROGRAM_DEFAULTS,
    ProgramConfig,
    WorkerOptions,
)
from corral.supervisor.config_source import ConfigSource

__all__ = ["worker_command", "worker_program", "worker_specs"]


def worker_specs() -> dict[str, FieldSpec]:
    """The keys of ``[worker.NAME]``: the worker's own, then every program key but ``command``."""
    program_keys = {k: v for k, v in field_specs(ProgramConfig).items() if k != "command"}
    return {**field_specs(WorkerOptions), **program_keys}


def worker_program(name: str, table: Mapping[str, Any], *, source: ConfigSource) -> ProgramConfig:
    """The ProgramConfig (``kind="worker"``) that ``[worker.NAME]`` stands for."""
    values = convert_table(table, worker_specs(), source=source, section=("worker", name))
    own = field_specs(WorkerOptions)
    options = WorkerOptions(**{k: v for k, v in values.items() if k in own})
    program = {"stop_signal": signal.SIGTERM, **WORKER_PROGRAM_DEFAULTS}
    program.update((k, v) for k, v in values.items() if k not in own)
    # The worker hands its unfinished tasks back within its own grace period, a
    # second before corral run's grace ends and the whole tree is killed.
    grace_s = max(float(program["stop_grace_s"]) - 1.0, 0.0)
    command = worker_command(options, grace_s=grace_s)
    return ProgramConfig(name=name, command=command, kind="worker", **program)


def worker_command(options: WorkerOptions, *, grace_s: float) -> tuple[str, ...]:
    """The argv of ``corral worker`` for ``options``, run by this Python."""
    flags = {
        "-c": str(options.concurrency),
        "-Q": ",".join(options.queues),
        "--grace-s": str(grace_s),
        "--prefetch": str(options.prefetch),
        "--max-tasks-per-child": str(options.max_tasks_per_child),
        "--max-memory-per-child-mb": str(options.max_memory_per_child_mb),
        "--log-level": options.log_level,
        "--log-format": options.log_format,
    }
    argv = [sys.executable, "-m", "corral.cli.main", "worker", options.app]
    for flag, value in flags.items():
        argv += [flag, value]
    return tuple(argv)
