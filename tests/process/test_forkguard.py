"""ForkGuard: a grandchild forked inside a task never continues into the worker loop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.process import ForkGuard

SCRIPT = Path(__file__).with_name("forkguard_worker.py")


def _run(mode: str, tmp_path: Path) -> tuple[list[str], str]:
    log = tmp_path / f"{mode}.log"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), mode, str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    return log.read_text().splitlines(), done.stderr


@pytest.mark.timeout(90)
def test_guard_ends_the_escaped_grandchild(tmp_path: Path) -> None:
    lines, stderr = _run("on", tmp_path)
    pids = {line.split()[-1] for line in lines}
    assert len(pids) == 1, f"only the worker runs the loop: {lines}"
    assert not any(line.startswith("on_failure") for line in lines)
    assert "a process forked inside task double_fork raised RuntimeError" in stderr
    assert "ended with os._exit(70)" in stderr


@pytest.mark.timeout(90)
def test_negative_control_without_the_guard_the_grandchild_joins_the_loop(
    tmp_path: Path,
) -> None:
    lines, _stderr = _run("off", tmp_path)
    pids = {line.split()[-1] for line in lines}
    assert len(pids) > 1, "the raising grandchild should have become a second worker"
    assert any(line.startswith("on_failure") for line in lines)


@pytest.mark.timeout(30)
def test_scope_in_the_entering_process_returns_and_raises_normally() -> None:
    guard = ForkGuard().install()
    try:
        with guard.task_scope("t"):
            pass
        with pytest.raises(ValueError), guard.task_scope("t"):
            raise ValueError("the task's own error reaches the runner")
        assert guard.forked_inside_task is None
    finally:
        guard.uninstall()


@pytest.mark.timeout(30)
def test_fork_inside_a_scope_is_marked_in_the_child() -> None:
    guard = ForkGuard().install()
    reader, writer = os.pipe()
    try:
        with guard.task_scope("marking"):
            pid = os.fork()
            if pid == 0:
                os.write(writer, (guard.forked_inside_task or "-").encode())
                os._exit(0)
        os.close(writer)
        assert os.read(reader, 100) == b"marking"
        os.waitpid(pid, 0)
    finally:
        os.close(reader)
        guard.uninstall()
