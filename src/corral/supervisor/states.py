"""The states of a supervised program instance, and the moves between them.

::

    STOPPED --start--> STARTING --up start_s and ready--> RUNNING
    STARTING --died--> BACKOFF --retry--> STARTING      (exponential backoff)
    BACKOFF --start_retries used up--> FATAL
    RUNNING --died--> EXITED --autorestart--> STARTING
    STARTING/RUNNING/BACKOFF --stop--> STOPPING --unit empty--> STOPPED

STOPPING ends only when the instance's whole unit is empty, never when its
main process exits (supervisord's mistake: seeds/002).
"""

from __future__ import annotations

import enum

__all__ = ["ProgramState", "can_move"]


class ProgramState(enum.Enum):
    """Where one program instance is."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"

    @property
    def active(self) -> bool:
        """True while processes of the instance may be alive."""
        return self in (ProgramState.STARTING, ProgramState.RUNNING, ProgramState.STOPPING)


_MOVES: dict[ProgramState, frozenset[ProgramState]] = {
    ProgramState.STOPPED: frozenset({ProgramState.STARTING}),
    ProgramState.STARTING: frozenset(
        {ProgramState.RUNNING, ProgramState.BACKOFF, ProgramState.STOPPING, ProgramState.FATAL}
    ),
    ProgramState.RUNNING: frozenset({ProgramState.EXITED, ProgramState.STOPPING}),
    ProgramState.BACKOFF: frozenset(
        {ProgramState.STARTING, ProgramState.FATAL, ProgramState.STOPPED}
    ),
    ProgramState.STOPPING: frozenset({ProgramState.STOPPED}),
    ProgramState.EXITED: frozenset(
        {ProgramState.STARTING, ProgramState.BACKOFF, ProgramState.STOPPED}
    ),
    ProgramState.FATAL: frozenset({ProgramState.STARTING, ProgramState.STOPPED}),
}


def can_move(old: ProgramState, new: ProgramState) -> bool:
    """True if ``old -> new`` is a legal move."""
    return new in _MOVES[old]
