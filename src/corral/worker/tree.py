"""The worker's process tree as it publishes it in the registry (``corral status --tree``).

Refreshed every heartbeat: per pool process its unit, generation, code
fingerprint, state, running task, RSS and every descendant; then the detached
processes, which survive their tasks but stay visible (P2, P8).
"""

from __future__ import annotations

import json
import time
from typing import Any

from corral.process import Containment, ProcessInfo, audit
from corral.worker.ledger import Ledger
from corral.worker.pool import PoolHandle

__all__ = ["worker_details"]


def worker_details(
    pools: list[PoolHandle], ledger: Ledger, containment: Containment, generation: int
) -> str:
    """The JSON text of a worker registry entry's ``details``."""
    return json.dumps(
        {
            "generation": generation,
            "containment": containment.describe(),
            "owner": containment.owner_id,
            "pools": [_pool_record(pool, ledger) for pool in pools],
            "detached": [_process_record(i) for i in _infos(containment.detached_unit().pids())],
        }
    )


def _pool_record(pool: PoolHandle, ledger: Ledger) -> dict[str, Any]:
    held = ledger.held.get(pool.running or -1)
    members = _infos(pool.unit.pids())
    own = next((i for i in members if i.pid == pool.pid), None)
    return {
        "pid": pool.pid,
        "unit": pool.unit.unit_id,
        "generation": pool.generation,
        "fingerprint": pool.fingerprint,
        "state": "stopping" if pool.stopping else ("busy" if held else "idle"),
        "task_id": held.delivery.id if held else None,
        "task": held.delivery.task if held else None,
        "running_s": round(time.monotonic() - pool.head_started_at, 3) if held else None,
        "rss_bytes": own.rss_bytes if own else 0,
        "done": pool.done,
        "descendants": [_process_record(i) for i in members if i.pid != pool.pid],
    }


def _infos(pids: list[int]) -> list[ProcessInfo]:
    return [info for info in map(audit.info_of, pids) if info is not None]


def _process_record(info: ProcessInfo) -> dict[str, Any]:
    return {
        "pid": info.pid,
        "ppid": info.ppid,
        "cmdline": " ".join(info.cmdline),
        "rss_bytes": info.rss_bytes,
        "state": info.state,
    }
