"""cgroup v2 containment: one cgroup per unit, under one cgroup per owner.

Layout: ``<our cgroup>/corral-<owner id>/<unit id>`` plus a ``detached`` sibling that
``detach()`` moves processes into. A process cannot leave a cgroup by ``setsid()`` or
double-forking, so ``cgroup.procs`` is the unit's complete membership and
``cgroup.kill`` (Linux 5.14+) kills it atomically, forks in flight included. Without
``cgroup.kill``, the unit is frozen (``cgroup.freeze``), every member SIGKILLed, then
thawed, so nothing can fork while we walk the list.

Spawned children join their unit before exec: the parent opens the unit's
``cgroup.procs`` and the child, between fork and exec, writes "0" (meaning "me") to
that fd. That is one ``write`` in the child, no locks, so it is safe even when the
owner runs threads. Only the v2 hierarchy is ever touched, never v1 ones.

The owner's identity, "<pid> <start ticks>", is stored on its directory as the extended
attribute ``user.corral.owner`` (cgroupfs allows no regular files, but user xattrs on
Linux 5.7+), so ``reclaim.reclaim_abandoned`` can tell when the owner died and its
units were left behind (a SIGKILLed worker main).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from corral.process import markers, procfs
from corral.process.errors import ProcessError
from corral.process.reaper import Reaper
from corral.process.unit import Containment, Unit

__all__ = [
    "OWNER_XATTR",
    "CgroupContainment",
    "CgroupUnit",
    "find_writable_cgroup",
    "kill_cgroup",
    "pid_namespace",
    "read_owner_record",
]

_RMDIR_RETRY_S = 2.0
_READ_CHUNK = 65536
OWNER_XATTR = "user.corral.owner"


def _cgroup2_mounts() -> list[Path]:
    with open("/proc/mounts") as f:
        return [Path(line.split()[1]) for line in f if line.split()[2:3] == ["cgroup2"]]


def _own_v2_path() -> str | None:
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def _probe_writable(directory: Path) -> bool:
    probe = directory / f"corral-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.rmdir()
    return True


def find_writable_cgroup() -> Path | None:
    """The directory of our own cgroup v2 if we may create child cgroups in it."""
    procfs.require_linux("cgroup containment")
    own = _own_v2_path()
    if own is None:
        return None
    for mount in _cgroup2_mounts():
        candidate = mount / own.lstrip("/")
        if (candidate / "cgroup.procs").exists() and _probe_writable(candidate):
            return candidate
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _populated(directory: Path) -> bool:
    try:
        text = (directory / "cgroup.events").read_text()
    except FileNotFoundError:
        return False
    return "populated 1" in text


def _procs(directory: Path) -> list[int]:
    """Members at any depth. Read after every task (the leftover check), so the common
    case, no sub-cgroups, is two small reads and no directory listing."""
    pids = _read_procs(directory)
    if _has_descendants(directory):
        for root, dirs, _files in os.walk(directory):
            pids.extend(pid for name in dirs for pid in _read_procs(Path(root) / name))
    return pids


def _pread_all(fd: int) -> bytes:
    """A cgroup file's whole text from its start (a short read is its end)."""
    chunks, offset = [], 0
    while chunk := os.pread(fd, _READ_CHUNK, offset):
        chunks.append(chunk)
        offset += len(chunk)
        if len(chunk) < _READ_CHUNK:
            break
    return b"".join(chunks)


def _read_procs(directory: Path) -> list[int]:
    text = _read_file(directory / "cgroup.procs")
    return [] if text is None else [int(p) for p in text.split()]


def _has_descendants(directory: Path) -> bool:
    """``nr_descendants`` in cgroup.stat (a listing of the directory is ~5x dearer).
    True when the file is missing (gone, or a kernel before 4.14): the walk finds out."""
    text = _read_file(directory / "cgroup.stat")
    return text is None or b"nr_descendants 0\n" not in text


def _read_file(path: Path) -> bytes | None:
    """The file's bytes with three system calls (``read_bytes`` makes seven), or None
    when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, _READ_CHUNK):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _rmdir_tree(directory: Path) -> None:
    """Remove a cgroup and its children (rmdir only: cgroup files are not deletable)."""
    for root, dirs, _files in os.walk(directory, topdown=False):
        for name in dirs:
            _rmdir_retrying(Path(root) / name)
    _rmdir_retrying(directory)


def _rmdir_retrying(directory: Path) -> None:
    # A just-emptied cgroup can report EBUSY for a moment while the kernel finishes
    # exiting its last task.
    deadline = time.monotonic() + _RMDIR_RETRY_S
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise ProcessError(
                    f"could not remove cgroup {directory}: {e}; it still holds processes "
                    f"{_procs(directory)}"
                ) from e
            time.sleep(0.01)


def kill_cgroup(directory: Path, *, use_kill_file: bool = True) -> None:
    """SIGKILL everything in a cgroup: ``cgroup.kill`` if present, else freeze + kill + thaw."""
    if use_kill_file and (directory / "cgroup.kill").exists():
        with contextlib.suppress(FileNotFoundError):
            _write(directory / "cgroup.kill", "1")
        return
    _freeze_and_kill(directory)


def _freeze_and_kill(directory: Path) -> None:
    freeze = directory / "cgroup.freeze"
    _write(freeze, "1")
    try:
        for pid in _procs(directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finally:
        # Never leave a unit frozen: a frozen survivor would hang kill_tree's wait.
        _write(freeze, "0")


def _record_owner(owner_dir: Path) -> None:
    start = procfs.start_ticks_of(os.getpid())
    # Without user xattrs (Linux < 5.7) the directory has no owner record; reclaim then
    # leaves it alone rather than guess (it reports it instead). The pid namespace is
    # part of the identity: pid 1 of a container is not the host's pid 1.
    record = f"{os.getpid()} {start} {pid_namespace()}"
    with contextlib.suppress(OSError):
        os.setxattr(owner_dir, OWNER_XATTR, record.encode())


def read_owner_record(owner_dir: Path) -> tuple[int, int, str] | None:
    """(pid, start ticks, pid namespace) of the process that created ``owner_dir``;
    None if not recorded. Records without a namespace are taken as this one's."""
    try:
        fields = os.getxattr(owner_dir, OWNER_XATTR).decode().split()
        pid, start = int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return None
    return pid, start, fields[2] if len(fields) > 2 else pid_namespace()


def pid_namespace() -> str:
    """This process's pid namespace, e.g. ``pid:[4026531836]``."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "pid:[unknown]"


class CgroupUnit(Unit):
    """A unit backed by its own cgroup directory."""

    def __init__(self, containment: CgroupContainment, unit_id: str, *, generation: int) -> None:
        super().__init__(containment, unit_id, generation=generation)
        self._cgroup = containment.owner_dir / unit_id
        self._use_kill_file = containment.use_kill_file
        self._cgroup.mkdir(exist_ok=unit_id == markers.DETACHED_UNIT)
        self._member_fds: tuple[int, int] | None = None  # cgroup.procs, cgroup.stat

    @property
    def cgroup(self) -> Path:
        """The unit's cgroup directory."""
        return self._cgroup

    def markers(self) -> dict[str, str]:
        """Unit markers plus CORRAL_CGROUP, which ``detach()`` reads."""
        env = super().markers()
        env[markers.CGROUP] = str(self._cgroup)
        return env

    def _preexec(self) -> tuple[Callable[[], None] | None, Callable[[], None]]:
        fd = os.open(self._cgroup / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)

        def join_cgroup() -> None:  # runs in the child between fork and exec
            os.write(fd, b"0")

        return join_cgroup, lambda: os.close(fd)

    def _enter(self, pid: int) -> None:
        try:
            _write(self._cgroup / "cgroup.procs", str(pid))
        except OSError as e:
            raise ProcessError(f"Unit.adopt({pid}): cannot move it into {self._cgroup}: {e}") from e

    def pids(self) -> list[int]:
        """Members of the cgroup and its sub-cgroups (zombies are not listed by the kernel).

        This runs after every task (the leftover check), so it reads through
        descriptors kept open: two ``pread`` calls, a sixth of opening the files.
        """
        fds = self._member_files()
        if fds is not None:
            try:
                pids = [int(p) for p in _pread_all(fds[0]).split()]
                if b"nr_descendants 0\n" in _pread_all(fds[1]):
                    return pids
            except OSError:  # removed under us: drop the dead files; the walk says what is left
                self._close_member_files()
        return _procs(self._cgroup)

    def _member_files(self) -> tuple[int, int] | None:
        if self._member_fds is None:
            try:
                procs = os.open(self._cgroup / "cgroup.procs", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            try:
                stat = os.open(self._cgroup / "cgroup.stat", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # a kernel before 4.14
                os.close(procs)
                return None
            self._member_fds = (procs, stat)
        return self._member_fds

    def _close_member_files(self) -> None:
        fds, self._member_fds = self._member_fds, None
        for fd in fds or ():
            os.close(fd)

    def is_empty(self) -> bool:
        """``populated 0`` in cgroup.events: nothing alive at any depth."""
        return not _populated(self._cgroup)

    def kill_all(self) -> None:
        """``cgroup.kill`` if present, else freeze + SIGKILL each member + thaw."""
        kill_cgroup(self._cgroup, use_kill_file=self._use_kill_file)

    def _release(self) -> None:
        self._close_member_files()
        _rmdir_tree(self._cgroup)


class CgroupContainment(Containment):
    """Units as cgroup v2 directories under ``<base>/corral-<owner_id>``."""

    kind = "cgroup"

    def __init__(
        self,
        *,
        owner_id: str,
        reaper: Reaper,
        records_dir: Path,
        base: Path,
        use_kill_file: bool = True,
    ) -> None:
        super().__init__(owner_id=owner_id, reaper=reaper, records_dir=records_dir)
        self._base = base
        self._owner_dir = base / f"corral-{owner_id}"
        self.use_kill_file = use_kill_file
        self._owner_dir.mkdir(exist_ok=True)
        _record_owner(self._owner_dir)

    @property
    def owner_dir(self) -> Path:
        """The owner's cgroup directory (parent of every unit's)."""
        return self._owner_dir

    def _new_unit(self, unit_id: str, *, generation: int) -> Unit:
        return CgroupUnit(self, unit_id, generation=generation)

    def _owner_cgroup(self) -> Path | None:
        return self._owner_dir

    def describe(self) -> str:
        """``cgroup v2 at <dir> (cgroup.kill)`` or ``(freeze + SIGKILL)``."""
        has_kill = self.use_kill_file and _kill_file_supported(self._owner_dir)
        how = "cgroup.kill" if has_kill else "freeze + SIGKILL"
        return f"cgroup v2 at {self._owner_dir} ({how}); owner is child subreaper"

    def _release(self) -> None:
        _rmdir_tree(self._owner_dir)


def _kill_file_supported(directory: Path) -> bool:
    # The root cgroup has no cgroup.kill; children of any cgroup do on Linux 5.14+.
    return (directory / "cgroup.kill").exists()
