"""Starting processes from inside a task, optionally detached from it (seeds/001).

Everything a task starts belongs to its unit and is stopped with it. A process
meant to outlive the task (the ``nohup`` helper of seed 001) is started with
``spawn(argv, detach=True)``: it leaves the task's unit for the worker's
recorded ``detached`` unit, survives the task, its leftovers policy and the
worker's stop, stays visible in ``corral status --tree`` and is still reaped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from corral.errors import ConfigError
from corral.process import ProcessError
from corral.process import detach as _detach

__all__ = ["detach", "spawn"]


def spawn(argv: Sequence[str], *, detach: bool = False, **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen)``; with ``detach``, handed over to the detached unit.

    A detached process gets its own session, so a terminal or group signal aimed
    at the task does not reach it either.
    """
    if detach:
        popen.setdefault("start_new_session", True)
    process: subprocess.Popen[bytes] = subprocess.Popen(list(argv), **popen)
    if detach:
        try:
            _detach(pid=process.pid)
        except ProcessError as error:
            process.kill()
            process.wait()
            raise ConfigError(f"spawn(detach=True) of {argv[0]!r}: {error}") from error
    return process


def detach() -> None:
    """Detach the calling process (a program started by a task) from the task's unit.

    Call it early in a helper program that must outlive the task that started it;
    ConfigError if the process was not started inside a corral unit.
    """
    try:
        _detach()
    except ProcessError as error:
        raise ConfigError(str(error)) from error
