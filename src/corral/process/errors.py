"""Errors of ``corral.process``.

::

    ProcessError             a process could not be spawned, contained, signalled or stopped
    └── UnsupportedPlatform  the running system lacks what the operation needs (Linux /proc,
                             prctl, cgroup v2)

``corral.process`` depends on nothing else in corral, so it has its own root;
``corral.errors`` wraps it for users of the whole framework.
"""

from __future__ import annotations

__all__ = ["ProcessError", "UnsupportedPlatform"]


class ProcessError(Exception):
    """A process could not be spawned, contained, signalled or stopped as asked."""


class UnsupportedPlatform(ProcessError):
    """The running system lacks a feature this operation needs (for example Linux /proc)."""
