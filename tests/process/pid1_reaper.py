"""Run as PID 1 of a fresh pid namespace by test_pid1.py.

usage: python pid1_reaper.py reap|no-reap

Spawns 50 short-lived children whose own children are orphaned to us (PID 1), then
waits until no live process is left and prints the number of zombies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from corral.process import Reaper

CHILDREN = 50
DEADLINE_S = 30.0


def _processes() -> list[tuple[int, str]]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            found.append((int(name), data[data.rindex(b")") + 2 :].split()[0].decode()))
    return found


def main() -> None:
    reap = sys.argv[1] == "reap"
    reaper = Reaper().install()
    reaper.install_sigchld()
    codes = []
    for _ in range(CHILDREN):
        # sh exits at once; its background sleep is orphaned and re-parented to PID 1.
        codes.append(subprocess.run(["sh", "-c", "sleep 0.05 & exit 3"], check=False).returncode)
        if reap and reaper.wait_sigchld(timeout_s=0):
            reaper.reap_nowait()
    deadline = time.monotonic() + DEADLINE_S
    while any(state != "Z" for _, state in _processes()) and time.monotonic() < deadline:
        if reap:
            reaper.wait_sigchld(timeout_s=0.1)
            reaper.reap_nowait()
        else:
            time.sleep(0.05)
    if reap:
        reaper.reap_nowait()
    zombies = sum(1 for _, state in _processes() if state == "Z")
    print(f"codes={sorted(set(codes))} zombies={zombies} pid={os.getpid()}", flush=True)


if __name__ == "__main__":
    main()
