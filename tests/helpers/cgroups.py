"""cgroup v2 directories that tests create, and their removal."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from corral.process.cgroup import find_writable_cgroup
from tests.helpers.procs import poll_for


def remove_cgroup(path: Path) -> None:
    """Kill what is left at any depth of ``path`` and remove it bottom-up (a last resort
    when a test died before its own cleanup). A just-emptied cgroup may refuse rmdir
    for a moment: each removal is retried for up to 5 s."""
    if not path.exists():
        return
    for sub in sorted(path.rglob("*"), key=lambda p: -len(p.parts)):
        if sub.is_dir():
            with contextlib.suppress(OSError):
                (sub / "cgroup.kill").write_text("1")
            poll_for(lambda sub=sub: _rmdir(sub), timeout_s=5)
    with contextlib.suppress(OSError):
        (path / "cgroup.kill").write_text("1")
    poll_for(lambda: _rmdir(path), timeout_s=5)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def private_cgroup() -> Iterator[Path | None]:
    """A cgroup of the test's own beside the test process's (named ``ctest-*``, which
    corral never takes for an owner's), removed on exit; None without cgroup v2.

    A corral process started in it makes its units there, out of sight of the
    reclaim that corral processes of parallel tests run under their own cgroup.
    """
    base = find_writable_cgroup()
    if base is None:
        yield None
        return
    path = base / f"ctest-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    try:
        yield path
    finally:
        remove_cgroup(path)
