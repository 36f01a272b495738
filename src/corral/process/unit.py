"""Unit and Containment: the interface both containment strategies implement.

A *unit* is one contained process tree: a pool process, or one instance of a program.
``Unit.spawn`` puts the child into the unit *before it execs* (so nothing it starts can
be outside), in its own process group, with the CORRAL_* markers in its environment,
and hands it to the owner's one ``Reaper``. The child is started by ``subprocess.Popen``
and the Popen object is given to the reaper, which reaps through ``Popen.poll()``, so
the two never disagree about an exit status.

A *containment* is the owner's side: it creates units, knows the ``detached`` unit
that ``detach()`` moves processes into, describes itself for ``corral doctor``, and
makes the owner a child subreaper (both strategies: orphans re-parent to the owner and
are reaped by it, never by an init that may not reap, seed 003).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from corral.process import markers, prctl
from corral.process.detach import detach_pid
from corral.process.errors import ProcessError
from corral.process.reaper import Reaper
from corral.process.ref import ProcessRef

__all__ = ["Containment", "Stdio", "Unit"]

Stdio = int | IO[Any] | None
_EMPTY_POLL_S = 0.02


class Unit(ABC):
    """One contained process tree; see the module docstring."""

    def __init__(self, containment: Containment, unit_id: str, *, generation: int) -> None:
        self._containment = containment
        self._unit_id = unit_id
        self._generation = generation
        self._closed = False

    @property
    def unit_id(self) -> str:
        """The unit's id (CORRAL_UNIT)."""
        return self._unit_id

    @property
    def generation(self) -> int:
        """The generation stamped into its processes (CORRAL_GENERATION)."""
        return self._generation

    def markers(self) -> dict[str, str]:
        """The environment markers of this unit's processes."""
        env = self._containment.markers()
        env[markers.UNIT] = self._unit_id
        env[markers.GENERATION] = str(self._generation)
        return env

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        pass_fds: Sequence[int] = (),
        stdin: Stdio = None,
        stdout: Stdio = None,
        stderr: Stdio = None,
    ) -> ProcessRef:
        """Start ``argv`` inside the unit; the owner's reaper will collect its status."""
        self._check_open("spawn")
        for name, value in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if value == subprocess.PIPE:
                raise ProcessError(
                    f"Unit.spawn(): {name}=PIPE is not supported (the reaper owns the "
                    "process, not a Popen); pass a file, an fd or DEVNULL"
                )
        full_env = dict(os.environ if env is None else env)
        full_env.update(self.markers())
        reaper = self._containment.reaper
        with reaper.spawning():
            popen = self._popen(argv, full_env, cwd, pass_fds, (stdin, stdout, stderr))
            ref = ProcessRef.of(popen.pid)
            reaper.watch(ref, popen=popen)
        self._track(ref)
        return ref

    def _popen(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: str | Path | None,
        pass_fds: Sequence[int],
        stdio: tuple[Stdio, Stdio, Stdio],
    ) -> subprocess.Popen[bytes]:
        preexec, cleanup = self._preexec()
        try:
            return subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                pass_fds=tuple(pass_fds),
                stdin=stdio[0],
                stdout=stdio[1],
                stderr=stdio[2],
                # Its own group: a terminal's ^C or a group kill elsewhere does not
                # reach it, and we can signal it as a group.
                process_group=0,
                # Only the cgroup strategy passes one: a single os.write to an fd opened
                # by the parent (see cgroup.py), which is safe with threads.
                preexec_fn=preexec,  # noqa: PLW1509
            )
        except subprocess.SubprocessError as e:
            raise ProcessError(
                f"Unit.spawn(): could not put {argv[0]!r} into unit {self._unit_id!r}: {e}"
            ) from e
        finally:
            cleanup()

    def _preexec(self) -> tuple[Callable[[], None] | None, Callable[[], None]]:
        """A function run in the child before exec, and a cleanup for the parent."""
        return None, lambda: None

    def adopt(self, pid: int) -> ProcessRef:
        """Take a child made by ``os.fork`` (e.g. a pool process) into the unit.

        Call it before the child starts anything (existing descendants are not moved),
        inside ``reaper.spawning()``; the child should ``os.environ.update(unit.markers())``
        so what it execs carries the markers.
        """
        self._check_open("adopt")
        self._enter(pid)
        ref = self._containment.reaper.watch_pid(pid)
        self._track(ref)
        return ref

    def _track(self, ref: ProcessRef) -> None:
        """Hook: remember a member (the fallback strategy uses it)."""
        return

    @abstractmethod
    def _enter(self, pid: int) -> None:
        """Move an existing process into the unit."""

    @abstractmethod
    def pids(self) -> list[int]:
        """Live (non-zombie) processes in the unit, at any depth."""

    def is_empty(self) -> bool:
        """True when no live process is left in the unit."""
        return not self.pids()

    def signal_all(self, sig: int) -> list[int]:
        """Send ``sig`` to every process in the unit; the pids signalled."""
        sent = []
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
            sent.append(pid)
        return sent

    @abstractmethod
    def kill_all(self) -> None:
        """SIGKILL everything in the unit, including processes forked meanwhile."""

    def wait_empty(self, *, timeout_s: float) -> bool:
        """Poll until the unit is empty; False if ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        while not self.is_empty():
            self._containment.reaper.reap_nowait()
            if time.monotonic() >= deadline:
                return False
            time.sleep(_EMPTY_POLL_S)
        self._containment.reaper.reap_nowait()
        return True

    def close(self, *, kill_timeout_s: float = 5.0) -> None:
        """SIGKILL what is left, wait until empty, release the unit's resources."""
        if self._closed:
            return
        deadline = time.monotonic() + kill_timeout_s
        while not self.is_empty() and time.monotonic() < deadline:
            self.kill_all()
            self.wait_empty(timeout_s=min(0.2, max(0.0, deadline - time.monotonic())))
        if not self.is_empty():
            raise ProcessError(
                f"Unit.close(): unit {self._unit_id!r} still has processes {self.pids()} "
                f"after kill_timeout_s={kill_timeout_s} (uninterruptible sleep?); inspect them"
            )
        self._release()
        self._closed = True
        self._containment.forget_unit(self)

    def _release(self) -> None:
        """Hook: free strategy resources once the unit is empty."""
        return

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ProcessError(f"Unit.{what}(): unit {self._unit_id!r} is closed")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._unit_id!r}, generation={self._generation})"


class Containment(ABC):
    """The owner's side of containment: units, the detached unit, the subreaper flag."""

    kind: str = ""

    def __init__(self, *, owner_id: str, reaper: Reaper, records_dir: Path) -> None:
        self._owner_id = markers.check_id("owner_id", owner_id)
        self._reaper = reaper
        self._records_dir = records_dir
        self._units: dict[str, Unit] = {}
        self._detached: Unit | None = None
        self._was_subreaper = prctl.is_child_subreaper()
        prctl.set_child_subreaper(True)
        (records_dir / markers.DETACHED_UNIT).mkdir(parents=True, exist_ok=True)

    @property
    def owner_id(self) -> str:
        """The owner's id (CORRAL_OWNER)."""
        return self._owner_id

    @property
    def reaper(self) -> Reaper:
        """The owner process's one reaper."""
        return self._reaper

    @property
    def records_dir(self) -> Path:
        """Where ``detach()`` records detached processes."""
        return self._records_dir

    def markers(self) -> dict[str, str]:
        """Markers shared by every unit of this owner."""
        return {
            markers.OWNER: self._owner_id,
            markers.CONTAINMENT: self.kind,
            markers.RECORDS: str(self._records_dir),
        }

    def create_unit(self, unit_id: str, *, generation: int) -> Unit:
        """A new, empty unit."""
        markers.check_id("unit_id", unit_id)
        if unit_id == markers.DETACHED_UNIT or unit_id in self._units:
            raise ProcessError(
                f"create_unit(): unit_id {unit_id!r} is reserved or already in use; pick another id"
            )
        unit = self._new_unit(unit_id, generation=generation)
        self._units[unit_id] = unit
        return unit

    def units(self) -> list[Unit]:
        """The open units (the detached unit excluded)."""
        return list(self._units.values())

    def detached_unit(self) -> Unit:
        """The unit holding processes handed over with ``detach()``."""
        if self._detached is None:
            self._detached = self._new_unit(markers.DETACHED_UNIT, generation=0)
        return self._detached

    def hand_over(self, pid: int) -> Path:
        """Move ``pid`` and its descendants out of their unit into the detached one.

        What a task does with ``detach()``, done by the owner (a supervisor's
        ``keep`` rule). Returns the record file.
        """
        self.detached_unit()
        return detach_pid(pid, owner_cgroup=self._owner_cgroup(), records=self._records_dir)

    def _owner_cgroup(self) -> Path | None:
        """Hook: the owner's cgroup directory, for strategies that have one."""
        return None

    def forget_unit(self, unit: Unit) -> None:
        """Called by ``Unit.close()``."""
        if self._units.get(unit.unit_id) is unit:
            del self._units[unit.unit_id]
        if unit is self._detached:
            self._detached = None

    @abstractmethod
    def _new_unit(self, unit_id: str, *, generation: int) -> Unit: ...

    @abstractmethod
    def describe(self) -> str:
        """One line for ``corral doctor``."""

    def close(self, *, kill_detached: bool = False) -> None:
        """Close every unit (SIGKILL what is left); detached processes survive unless asked."""
        for unit in self.units():
            unit.close()
        detached = self.detached_unit()
        if kill_detached or detached.is_empty():
            detached.close()
            shutil.rmtree(self._records_dir, ignore_errors=True)
            self._release()
        prctl.set_child_subreaper(self._was_subreaper)

    def _release(self) -> None:
        """Hook: free strategy resources (the owner cgroup)."""
        return
