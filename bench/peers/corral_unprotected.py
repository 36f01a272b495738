"""corral with its process protections taken out: the "off" run of issue 7 (bench only).

    python bench/peers/corral_unprotected.py worker bench_tasks:app -c 2 [corral worker options]
    python bench/peers/corral_unprotected.py --check

corral has no switch that turns its protections off, and must not have one (a user
would turn it on). This launcher takes them out of one worker by monkeypatching, in
its own process, then runs ``corral worker`` through ``corral.cli.main`` as usual. Its
pool processes are started through this file too (``--pool-process``), so that the
same is done in them before ``corral.worker.child`` runs. What is taken out:

- containment (P2): pool processes are plain children of the worker main: no cgroup,
  not a child subreaper, no process group of their own, no CORRAL_* markers; a unit's
  members are the pool process alone (no cgroup read, no /proc scan);
- leftover checks: none (the finished tasks are forgotten at once, so neither the
  check when a pool process is idle nor the pause of LEFTOVER_CHECK_S before it);
- fork guard (P5): a null guard in pool processes (no at-fork hook, no task scope);
- orphan reaping (P3): off in the worker main (its own pool processes are still
  reaped, as by any prefork) and none at all in pool processes;
- lease renewal: not done. Leases themselves stay: a task is reserved with a lease
  and settled with its token, which is the broker's delivery model (at-least-once),
  not a protection that can be removed.

What stays because every prefork pool has it, and none of it is per task: the pool
process's parent-death signal, its code fingerprint, the worker's heartbeat (whose
process tree is then just the pool processes).

Each patch names the function that must use the patched name. Before the worker
starts, the launcher checks that every name still exists and is still used there,
and exits naming it otherwise: a refactor must not turn the "off" run into one more
protected run without anyone noticing. ``--check`` does only that.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from corral.cli import main as cli_main
from corral.process import ProcessError, ProcessRef, Reaper, Unit
from corral.worker import child, execution, pool, pools, worker

POOL_FLAG = "--pool-process"
CHECK_FLAG = "--check"
CHILD_MODULE = ["-m", "corral.worker.child"]


# -- containment: pool processes as plain children ---------------------------------------------
class PlainUnit(Unit):
    """A "unit" that is one plain child process: spawned as is, its members itself alone."""

    def __init__(self, owner: PlainChildren, unit_id: str, *, generation: int) -> None:
        super().__init__(owner, unit_id, generation=generation)  # type: ignore[arg-type]
        self.owner = owner
        self.ref: ProcessRef | None = None

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        pass_fds: Sequence[int] = (),
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
    ) -> ProcessRef:
        """Start ``argv`` as a plain child; the worker main's reaper still collects it."""
        reaper = self.owner.reaper
        with reaper.spawning():
            popen = subprocess.Popen(
                list(argv), env=env, cwd=cwd, pass_fds=tuple(pass_fds),
                stdin=stdin, stdout=stdout, stderr=stderr,
            )  # fmt: skip
            self.ref = ProcessRef.of(popen.pid)
            reaper.watch(self.ref, popen=popen)
        return self.ref

    def _enter(self, pid: int) -> None:
        raise ProcessError("protections off: plain children cannot adopt processes")

    def pids(self) -> list[int]:
        """The child itself until it is reaped; nothing it started is tracked."""
        if self.ref is None or self.owner.reaper.status_of(self.ref) is not None:
            return []
        return [self.ref.pid]

    def kill_all(self) -> None:
        """SIGKILL the child (its own children, if any, are not looked for)."""
        if self.ref is not None:
            self.ref.send_signal(signal.SIGKILL)


class PlainChildren:
    """Stands in for ``corral.process.Containment`` in the worker main: no containment."""

    kind = "none"
    owner_id = "protections-off"

    def __init__(self, reaper: Reaper) -> None:
        self.reaper = reaper
        self._units: dict[str, PlainUnit] = {}

    def create_unit(self, unit_id: str, *, generation: int) -> PlainUnit:
        """A unit for one pool process."""
        unit = PlainUnit(self, unit_id, generation=generation)
        self._units[unit_id] = unit
        return unit

    def detached_unit(self) -> PlainUnit:
        """An empty unit: nothing can be detached (the heartbeat lists it)."""
        return self.create_unit("detached", generation=0)

    def forget_unit(self, unit: Unit) -> None:
        """Called by ``Unit.close()``."""
        self._units.pop(unit.unit_id, None)

    def units(self) -> list[PlainUnit]:
        """The open units."""
        return list(self._units.values())

    def describe(self) -> str:
        """What the worker logs at start and publishes in its heartbeat."""
        return "none: protections off (bench/peers/corral_unprotected.py)"

    def close(self, *, kill_detached: bool = False) -> None:
        """Close every unit (SIGKILL a pool process still alive)."""
        for unit in self.units():
            unit.close()


def plain_children(**kwargs: Any) -> PlainChildren:
    """Replaces ``choose_containment`` in the worker main (it passes the reaper)."""
    return PlainChildren(kwargs["reaper"])


# -- pool processes: no fork guard, no orphan reaping -------------------------------------------
class NoForkGuard:
    """Replaces ``execution.FORK_GUARD``: a task scope that does nothing."""

    enabled = False

    def install(self) -> NoForkGuard:
        """No at-fork hook."""
        return self

    def task_scope(self, task_name: str) -> contextlib.AbstractContextManager[None]:
        """A null context: a process forked in the task may unwind into the runner."""
        return contextlib.nullcontext()


class NoOrphanReaper:
    """Replaces the pool process's ``Reaper``: it never waits for a task's children."""

    def __init__(self, *, reap_orphans: bool = True) -> None:
        self.reap_orphans = reap_orphans
        self.sigchld_count = 0  # never changes: the pool process never looks

    def install(self) -> NoOrphanReaper:
        """Nothing to install."""
        return self

    def install_sigchld(self) -> None:
        """No SIGCHLD handler."""

    def drain_sigchld(self) -> None:
        """Nothing to drain."""

    def reap_nowait(self) -> list[Any]:
        """Reaps nothing (and costs no syscall)."""
        return []

    def reap_if_due(self, *, every_s: float) -> None:
        """Reaps nothing (and costs no syscall)."""


ORIGINAL_COMMAND = pool._command


def pool_command(spec: pool.PoolSpec, generation: int, read_fd: int, write_fd: int) -> list[str]:
    """Replaces ``pool._command``: the same pool process, started through this file."""
    argv = ORIGINAL_COMMAND(spec, generation, read_fd, write_fd)
    if argv[1:3] != CHILD_MODULE:
        raise RuntimeError(f"protections off: pool command {argv[:3]} unexpected; see {__file__}")
    return [argv[0], str(Path(__file__).resolve()), POOL_FLAG, *argv[3:]]


# -- the worker main: no leftover checks, no lease renewal -------------------------------------
def forget_finished(self: pools.Pools, handle: pool.PoolHandle) -> None:
    """Replaces ``Pools._check_leftovers``: the finished tasks are not checked."""
    handle.finished_tasks.clear()


def no_renewal(self: worker.Worker) -> None:
    """Replaces ``Worker._renew_leases``: leases run their course (tasks here take ms)."""


def tripwire(*args: Any, **kwargs: Any) -> None:
    """Replaces the leftover check itself: reaching it means a patch no longer covers it."""
    raise RuntimeError("protections off: the leftover check ran; update " + __file__)


# -- patching ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Patch:
    """``owner.name = replacement``, where ``used_by`` must mention ``name`` in its source."""

    owner: ModuleType | type
    name: str
    replacement: object
    used_by: Callable[..., Any]

    def problem(self) -> str | None:
        """Why this patch would not take the protection out; None if it would."""
        where = f"{qualified(self.owner)}.{self.name}"
        if not hasattr(self.owner, self.name):
            return f"{where} is gone"
        if self.name not in names_used(self.used_by):
            return f"{where} is no longer used by {self.used_by.__qualname__}"
        return None

    def apply(self) -> None:
        """Make the replacement."""
        setattr(self.owner, self.name, self.replacement)


MAIN_PATCHES = (
    Patch(worker, "choose_containment", plain_children, worker.Worker.__init__),
    Patch(pool, "_command", pool_command, pool.PoolHandle.__init__),
    Patch(pools.Pools, "_check_leftovers", forget_finished, pools.Pools.check_idle_leftovers),
    Patch(pools, "check_leftovers", tripwire, pools.Pools._check_leftovers),
    Patch(worker.Worker, "_renew_leases", no_renewal, worker.Worker._on_schedule),
)
NULL_GUARD = NoForkGuard()
POOL_PATCHES = (
    Patch(execution, "FORK_GUARD", NULL_GUARD, execution._call),
    Patch(child, "FORK_GUARD", NULL_GUARD, child.main),
    Patch(child, "Reaper", NoOrphanReaper, child.PoolProcess.__init__),
)


def qualified(owner: ModuleType | type) -> str:
    """``corral.worker.pools.Pools`` for a class, ``corral.worker.pool`` for a module."""
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}"
    return owner.__name__


def names_used(function: Callable[..., Any]) -> set[str]:
    """The names ``function``'s code mentions (its own name, comments and strings excluded)."""
    source = textwrap.dedent(inspect.getsource(function))
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    return {
        token.string
        for before, token in itertools.pairwise(tokens)
        if token.type == tokenize.NAME and before.string != "def"
    }


def problems() -> list[str]:
    """Every patch that would not take its protection out (checked before any is made)."""
    return [p for patch in (*MAIN_PATCHES, *POOL_PATCHES) if (p := patch.problem())]


def apply(patches: Sequence[Patch]) -> None:
    """Check every patch, then make them; exit naming what changed if one would not hold."""
    found = problems()
    if found:
        sys.exit(f"{__file__}: cannot take corral's protections out: " + "; ".join(found))
    for patch in patches:
        patch.apply()


def main() -> None:
    """``--check``, a pool process (``--pool-process``), or the worker main (anything else)."""
    if sys.argv[1:] == [CHECK_FLAG]:
        found = problems()
        print("\n".join(found) or "every protection can be taken out")
        sys.exit(1 if found else 0)
    if sys.argv[1:2] == [POOL_FLAG]:
        apply(POOL_PATCHES)
        sys.exit(child.main(sys.argv[2:]))
    apply(MAIN_PATCHES)
    os.environ[worker.UNSAFE_NO_ORPHAN_REAPING] = "1"
    print("corral worker with protections off (bench only)", file=sys.stderr, flush=True)
    sys.argv = ["corral", *sys.argv[1:]]
    cli_main.main()


if __name__ == "__main__":
    main()
