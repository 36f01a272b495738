"""Program output: pipes pumped into size-rotated log files, and reading them back.

A program's stdout/stderr is the write end of a pipe; the supervisor's selector
calls `LogPump.pump` when the read end is readable, and the pump appends to a
`RotatingLog`. The supervisor, not the program, writes the file, so rotation
never races the program and never loses a byte: a chunk that does not fit is
split at a line end, its head finishes the old file and its tail starts the new.

`tail_lines` and `follow` are what ``corral ctl tail NAME [-f]`` reads with;
`follow` behaves like ``tail -F`` and carries on across rotations.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FileFollower", "LogPump", "RotatingLog", "follow", "tail_lines"]

_READ_CHUNK_BYTES = 65536
# One pump() call reads at most this much, so a chatty program cannot starve the
# loop; the selector is level-triggered and calls again on the next tick.
_PUMP_MAX_BYTES = 1 << 20


class RotatingLog:
    """An append-only log file rotated by size: path -> path.1 -> ... -> path.N.

    ``max_bytes=0`` never rotates. ``backups=0`` keeps no old file (a rotation
    starts the file afresh). Files never exceed ``max_bytes`` unless one line is
    longer than that, in which case the line is cut.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        if max_bytes < 0 or backups < 0:
            raise ValueError(f"{path}: max_bytes and backups must be >= 0")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.rotations = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        """Append ``data``, rotating first whenever the next piece would not fit."""
        while data:
            room = self._room()
            if len(data) <= room:
                self._write_all(data)
                return
            cut = self._cut(data, room)
            if cut:
                self._write_all(data[:cut])
                data = data[cut:]
            self.rotate()

    def rotate(self) -> None:
        """Shift the backups up by one (dropping the oldest) and start a new file."""
        os.close(self._fd)
        if self.backups:
            for index in range(self.backups - 1, 0, -1):
                older = self._backup(index)
                if older.exists():
                    os.replace(older, self._backup(index + 1))
            # Someone may have removed the file under us; there is then nothing to keep.
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path, self._backup(1))
        self._fd = self._open(truncate=not self.backups)
        self._size = 0
        self.rotations += 1

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _room(self) -> int:
        if self.max_bytes == 0:
            return 1 << 62
        return self.max_bytes - self._size

    def _cut(self, data: bytes, room: int) -> int:
        """How many bytes of ``data`` go into the current file before rotating."""
        if room <= 0:
            return 0
        line_end = data.rfind(b"\n", 0, room)
        if line_end >= 0:
            return line_end + 1
        # No line end fits: rotate first, unless the file is empty, where waiting
        # would not help (a line longer than max_bytes is cut).
        return room if self._size == 0 else 0

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written

    def _open(self, *, truncate: bool = False) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        return os.open(self.path, flags | (os.O_TRUNC if truncate else 0), 0o644)

    def _backup(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")


class LogPump:
    """Moves a program's output from the read end of a pipe into a `RotatingLog`.

    The pump owns ``read_fd`` (made non-blocking) and closes it in `close`.
    """

    def __init__(self, read_fd: int, log: RotatingLog) -> None:
        os.set_blocking(read_fd, False)
        self.read_fd = read_fd
        self.log = log
        self.bytes_pumped = 0

    @classmethod
    def open_pipe(cls, log: RotatingLog) -> tuple[LogPump, int]:
        """A new pipe: the pump on its read end, and the write end for the child's stdout.

        The caller passes the write fd to the child and closes its own copy, or EOF
        never comes.
        """
        read_fd, write_fd = os.pipe()
        return cls(read_fd, log), write_fd

    def fileno(self) -> int:
        """The read end, for registering with a selector."""
        return self.read_fd

    def pump(self) -> bool:
        """Copy what is available now into the log; False at EOF (every writer closed)."""
        moved = 0
        while moved < _PUMP_MAX_BYTES:
            try:
                data = os.read(self.read_fd, _READ_CHUNK_BYTES)
            except (BlockingIOError, InterruptedError):
                return True
            if not data:
                return False
            self.log.write(data)
            moved += len(data)
            self.bytes_pumped += len(data)
        return True

    def close(self) -> None:
        """Close the read end (unregister it from the selector first); safe to call twice."""
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1


def tail_lines(path: Path, n: int) -> list[str]:
    """The last ``n`` lines of the log, reaching into ``path.1``, ``path.2``... if needed."""
    if n <= 0:
        return []
    lines: list[str] = []
    for candidate in _log_files_newest_first(path):
        lines = _last_lines(candidate, n - len(lines)) + lines
        if len(lines) >= n:
            break
    return lines


def _log_files_newest_first(path: Path) -> Iterator[Path]:
    if path.exists():
        yield path
    index = 1
    while (backup := path.with_name(f"{path.name}.{index}")).exists():
        yield backup
        index += 1


def _last_lines(path: Path, n: int) -> list[str]:
    """Read backwards block by block until ``n`` line ends are seen (big logs stay cheap)."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            data = b""
            while end > 0 and data.count(b"\n") <= n:
                start = max(0, end - _READ_CHUNK_BYTES)
                f.seek(start)
                data = f.read(end - start) + data
                end = start
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-n:]


class FileFollower:
    """Reads what is appended to a path, like ``tail -F``: survives rotation and truncation.

    `read_nowait` never blocks (for a selector loop); iterating blocks, polling
    every ``poll_s``, and never ends (for ``corral ctl tail -f``).

    When the path is renamed away (rotated), the old file is read to its end before
    the new one is opened from its start, so no byte written before the rotation is
    skipped. A path that does not exist yet is waited for.
    """

    def __init__(self, path: Path, *, from_start: bool = False, poll_s: float = 0.2) -> None:
        self.path = path
        self.poll_s = poll_s
        self._fd = -1
        self._inode: tuple[int, int] | None = None
        self._open(at_end=not from_start)

    def read_nowait(self) -> bytes:
        """What was appended since the last call (possibly b""); never blocks."""
        if self._fd < 0:
            self._open(at_end=False)
            return self._drain() if self._fd >= 0 else b""
        data = self._drain()
        if self._truncated():
            os.lseek(self._fd, 0, os.SEEK_SET)
            data += self._drain()
        if self._replaced():
            # Whatever the old file got before the rename is still ours to read.
            data += self._drain()
            self._close()
            self._open(at_end=False)
            data += self._drain() if self._fd >= 0 else b""
        return data

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        """The next appended bytes, sleeping ``poll_s`` between looks until there are some."""
        while not (data := self.read_nowait()):
            time.sleep(self.poll_s)
        return data

    def __enter__(self) -> FileFollower:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop following; safe to call twice."""
        self._close()

    def _open(self, *, at_end: bool) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        st = os.fstat(self._fd)
        self._inode = (st.st_dev, st.st_ino)
        if at_end:
            os.lseek(self._fd, 0, os.SEEK_END)

    def _drain(self) -> bytes:
        chunks = []
        while chunk := os.read(self._fd, _READ_CHUNK_BYTES):
            chunks.append(chunk)
        return b"".join(chunks)

    def _truncated(self) -> bool:
        return os.fstat(self._fd).st_size < os.lseek(self._fd, 0, os.SEEK_CUR)

    def _replaced(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            # Between the rename and the new file's creation: finish the old file now
            # and pick up the new one on a later call.
            return True
        return (st.st_dev, st.st_ino) != self._inode

    def _close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
            self._inode = None


def follow(path: Path, *, poll_s: float = 0.2, from_start: bool = False) -> FileFollower:
    """Iterate over what is appended to ``path`` from now on, across rotations (``tail -F``).

    The position is taken when ``follow`` is called, not at the first ``next()``, so
    nothing written between `tail_lines` and the loop is missed. Starts at the current
    end unless ``from_start``. Use it in a ``with`` block, or `FileFollower.close` it.
    """
    return FileFollower(path, from_start=from_start, poll_s=poll_s)
