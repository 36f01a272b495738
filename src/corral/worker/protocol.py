"""Frames between the worker main and its pool processes, over a pair of pipes.

A frame is a 4-byte big-endian length followed by a ``marshal``-encoded tuple.
``marshal`` is safe here: both ends are the same interpreter build, and the
pipes are private to the worker (nothing from the network is ever unmarshalled;
task bodies travel inside frames as opaque bytes).

main -> pool::

    ("run", seq, task_id, body, attempts)
    ("stop",)                       finish the running task, hand back the rest, leave
    ("retire",)                     run every task already handed over, then leave

pool -> main::

    ("hello", pid, generation, fingerprint, limits)
    ("done", seq, outcome, payload, delay_s, reason)
    ("released", [seq, ...])        tasks handed back unstarted (stop, retirement)
    ("bye", exit_code, reason)
"""

from __future__ import annotations

import errno
import marshal
import os
import struct
from collections.abc import Iterator
from typing import Any

__all__ = ["FrameReader", "FrameWriter", "pack"]

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 << 20
READ_CHUNK = 1 << 16

# Outcomes a pool reports for a task; the main maps them to broker settlements.
OK = "ok"
RETRY = "retry"
FAIL = "fail"
DEAD = "dead"


def pack(frame: tuple[Any, ...]) -> bytes:
    """One frame as bytes."""
    data = marshal.dumps(frame)
    return _HEADER.pack(len(data)) + data


class FrameReader:
    """Splits a byte stream into frames; ``feed`` bytes, iterate complete frames."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[Any, ...]]:
        """Add ``data`` and yield every frame that is now complete."""
        buffer = self._buffer
        buffer += data
        offset = 0
        size = len(buffer)
        while size - offset >= 4:
            (length,) = _HEADER.unpack_from(buffer, offset)
            if length > MAX_FRAME_BYTES:
                raise ValueError(f"frame of {length} bytes: the pipe is corrupted")
            end = offset + 4 + length
            if end > size:
                break
            yield marshal.loads(bytes(buffer[offset + 4 : end]))
            offset = end
        del buffer[:offset]

    def read_from(self, fd: int) -> list[tuple[Any, ...]] | None:
        """Read what is available on non-blocking ``fd``; None at end of file."""
        frames: list[tuple[Any, ...]] = []
        while True:
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return frames
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                raise
            if not data:
                return frames or None
            frames.extend(self.feed(data))
            if len(data) < READ_CHUNK:
                return frames


class FrameWriter:
    """Buffers frames for a non-blocking fd so the writer never blocks on a full pipe."""

    __slots__ = ("_buffer", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    @property
    def pending(self) -> bool:
        """True while bytes wait for the pipe to drain."""
        return bool(self._buffer)

    def write(self, frame: tuple[Any, ...]) -> None:
        """Queue a frame and write as much as the pipe takes now."""
        self._buffer += pack(frame)
        self.flush()

    def flush(self) -> None:
        """Write buffered bytes until the pipe is full or the buffer empty."""
        while self._buffer:
            try:
                written = os.write(self.fd, self._buffer)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            del self._buffer[:written]
