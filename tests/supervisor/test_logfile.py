"""Rotating logs fed by a real pipe: every line once, in order; tail and tail -F."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from corral.supervisor.logfile import FileFollower, LogPump, RotatingLog, follow, tail_lines
from tests.helpers.procs import poll_for

# Writes numbered lines of varying length, in writes of varying size, so that chunks
# straddle rotations at every offset.
WRITER = textwrap.dedent(
    """
    import os, sys
    count = int(sys.argv[1])
    batch = []
    for i in range(count):
        batch.append(f"line {i:06d} " + "x" * (i % 37) + "\\n")
        if len(batch) == 1 + i % 13:
            os.write(1, "".join(batch).encode())
            batch = []
    os.write(1, "".join(batch).encode())
    """
)


def _expected(count: int) -> list[str]:
    return [f"line {i:06d} " + "x" * (i % 37) for i in range(count)]


def _all_files_oldest_first(path: Path) -> list[Path]:
    backups = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:]))
    return [*backups, path]


def _pump_child(count: int, log: RotatingLog) -> LogPump:
    pump, write_fd = LogPump.open_pipe(log)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(count)], stdout=write_fd)
    os.close(write_fd)  # only the child holds the write end now, so EOF comes when it exits
    try:
        _drain(pump, timeout_s=60)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        pump.close()
    return pump


def _drain(pump: LogPump, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(pump, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            for _ in selector.select(timeout=0.5):
                if not pump.pump():
                    selector.unregister(pump)
                    return
    raise AssertionError("the pipe never reached EOF")


@pytest.mark.timeout(120)
def test_every_line_arrives_exactly_once_across_rotations(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "web.out.log"  # the parent directory is created
    log = RotatingLog(path, max_bytes=8192, backups=100)
    count = 20_000
    pump = _pump_child(count, log)
    log.close()
    files = _all_files_oldest_first(path)
    assert log.rotations >= 10
    assert len(files) == log.rotations + 1
    text = b"".join(f.read_bytes() for f in files).decode()
    assert text.splitlines() == _expected(count)
    assert pump.bytes_pumped == len(text)
    for f in files:
        data = f.read_bytes()
        assert len(data) <= 8192
        assert data.endswith(b"\n")  # rotations happen at line ends


@pytest.mark.timeout(120)
def test_the_oldest_backups_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "web.log"
    log = RotatingLog(path, max_bytes=4096, backups=3)
    _pump_child(5_000, log)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "web.log",
        "web.log.1",
        "web.log.2",
        "web.log.3",
    ]
    kept = b"".join(f.read_bytes() for f in _all_files_oldest_first(path)).decode().splitlines()
    assert kept == _expected(5_000)[-len(kept) :]


def test_a_line_longer_than_max_bytes_is_cut_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = RotatingLog(path, max_bytes=10, backups=10)
    log.write(b"ab\n" + b"y" * 25 + b"\nz\n")
    log.close()
    files = _all_files_oldest_first(path)
    assert [f.read_bytes() for f in files] == [b"ab\n", b"y" * 10, b"y" * 10, b"yyyyy\nz\n"]


def test_max_bytes_zero_never_rotates_and_reopening_appends(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = RotatingLog(path, max_bytes=0, backups=2)
    log.write(b"a\n" * 1000)
    log.close()
    log = RotatingLog(path, max_bytes=0, backups=2)
    log.write(b"b\n")
    log.close()
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"a\n" * 1000 + b"b\n"


def test_no_backups_starts_the_file_afresh(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = RotatingLog(path, max_bytes=6, backups=0)
    log.write(b"one\ntwo\n")
    log.close()
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"two\n"


def test_tail_lines_reaches_into_backups(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = RotatingLog(path, max_bytes=20, backups=5)
    for i in range(12):
        log.write(f"l{i:02d}\n".encode())
    log.close()
    assert tail_lines(path, 3) == ["l09", "l10", "l11"]
    assert tail_lines(path, 7) == [f"l{i:02d}" for i in range(5, 12)]
    assert tail_lines(path, 100) == [f"l{i:02d}" for i in range(12)]
    assert tail_lines(tmp_path / "missing", 5) == []


def test_tail_lines_of_a_big_file_reads_only_its_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"".join(f"{i}\n".encode() for i in range(200_000)))
    assert tail_lines(path, 2) == ["199998", "199999"]


def _collect(follower: FileFollower, expected: bytes) -> bytes:
    received = b""

    def more() -> bool:
        nonlocal received
        received += follower.read_nowait()
        return len(received) >= len(expected)

    poll_for(more, timeout_s=10)
    return received


def test_follow_starts_at_the_end_and_reads_every_byte_across_rotations(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = RotatingLog(path, max_bytes=64, backups=1)
    log.write(b"before\n")
    follower = FileFollower(path)
    received = b""
    expected = b""
    try:
        for i in range(40):
            line = f"after {i:03d}\n".encode()
            log.write(line)
            expected += line
            if i % 3 == 0:  # behind by less than a rotation, like tail -F polling
                received += follower.read_nowait()
        received += _collect(follower, expected[len(received) :])
    finally:
        follower.close()
        log.close()
    assert log.rotations >= 5
    assert received == expected


def test_follow_waits_for_a_missing_file_and_handles_truncation(tmp_path: Path) -> None:
    path = tmp_path / "log"
    follower = FileFollower(path)
    try:
        assert follower.read_nowait() == b""
        path.write_bytes(b"first\n")
        assert _collect(follower, b"first\n") == b"first\n"
        path.write_bytes(b"")  # truncated in place, as copytruncate does
        with path.open("ab") as f:
            f.write(b"new\n")
        assert _collect(follower, b"new\n") == b"new\n"
    finally:
        follower.close()


def test_follow_generator_yields_appended_bytes(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = RotatingLog(path, max_bytes=16, backups=1)
    log.write(b"old\n")
    with follow(path, poll_s=0.01) as stream:
        log.write(b"0123456789\n")
        log.write(b"abcdefghij\n")  # rotates
        received = b""
        for chunk in stream:
            received += chunk
            if len(received) >= 22:
                break
    log.close()
    assert received == b"0123456789\nabcdefghij\n"
