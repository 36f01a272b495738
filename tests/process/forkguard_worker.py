"""A toy worker loop (seed 000) run as a script by test_forkguard.py.

usage: python forkguard_worker.py on|off LOGFILE

Its one task double-forks and the grandchild raises. The script makes itself a child
subreaper and waits for every descendant before exiting, so nothing outlives it.
"""

from __future__ import annotations

import os
import sys

from corral.process import ForkGuard, prctl

ITERATIONS = 3


def task() -> None:
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            raise RuntimeError("boom in the grandchild")
        os._exit(0)
    os.waitpid(pid, 0)


def main() -> None:
    guard = ForkGuard(enabled=sys.argv[1] == "on").install()
    with open(sys.argv[2], "a", buffering=1) as log:
        for n in range(ITERATIONS):
            log.write(f"loop {n} pid {os.getpid()}\n")
            try:
                with guard.task_scope("double_fork"):
                    task()
            except RuntimeError:
                log.write(f"on_failure pid {os.getpid()}\n")


if __name__ == "__main__":
    prctl.set_child_subreaper(True)
    main()
    while True:  # reap every escaped copy before leaving
        try:
            os.wait()
        except ChildProcessError:
            break
