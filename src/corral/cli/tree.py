"""``corral status APP --tree``: every worker's process tree, stale code and escapes (P4, P8).

Workers publish their tree in their registry entry's ``details`` (refreshed every
heartbeat): containment, owner id, pool processes with their descendants, detached
processes. This module turns those entries into records (``tree_record``) and rich
trees (``render``). Entries written by older workers lack some keys: a missing key
reads as empty, never as an error.

Two things are computed here rather than trusted:

- ``stale``: a pool process whose code fingerprint differs from that of the worker's
  newest generation is still running old code (seed 002's old SMS template);
- ``escaped``: on *this* machine only, a /proc scan finds processes carrying CORRAL_OWNER
  markers that are not held by a live owner, and not detached: the orphans containment
  exists to prevent, or the units of a worker that died. "Held" means below a live
  registered worker of that owner, or inside a cgroup whose recorded owner is alive
  (a cgroup cannot be left, so that also covers owners of other apps on this machine).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from rich.tree import Tree

from corral.brokers.base import WorkerInfo
from corral.process import audit, markers, procfs
from corral.process.audit import ProcessInfo
from corral.process.detach import recorded
from corral.process.reclaim import owner_alive

__all__ = ["escaped_processes", "render", "tree_record"]

Record = dict[str, Any]
_MIB = 1 << 20


def details_of(info: WorkerInfo) -> Record:
    """The worker's ``details`` JSON as a dict ({} when missing or malformed)."""
    try:
        details = json.loads(info.details or "{}")
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def _records(value: object) -> list[Record]:
    """A list of dict records, whatever an old or odd entry holds instead."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _newest_fingerprint(pools: list[Record]) -> str | None:
    versioned = [p for p in pools if isinstance(p.get("generation"), int) and p.get("fingerprint")]
    if not versioned:
        return None
    newest = max(versioned, key=lambda p: int(p["generation"]))
    return str(newest["fingerprint"])


def _with_stale(pools: list[Record]) -> list[Record]:
    newest = _newest_fingerprint(pools)
    return [
        {
            **pool,
            "stale": bool(newest and pool.get("fingerprint") and pool["fingerprint"] != newest),
        }
        for pool in pools
    ]


def _alive(pid: int) -> bool:
    st = procfs.stat_of(pid)
    return st is not None and not st.zombie


def tree_record(info: WorkerInfo, *, now: float) -> Record:
    """One worker as a JSON-ready record, each pool process flagged ``stale`` or not."""
    details = details_of(info)
    pools = [
        {**pool, "descendants": _records(pool.get("descendants"))}
        for pool in _records(details.get("pools"))
    ]
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "owner": details.get("owner"),
        "containment": details.get("containment"),
        "generation": details.get("generation"),
        "heartbeat_age_s": round(now - info.heartbeat_at, 3),
        # Only knowable here: a registered worker whose main is gone was killed (SIGKILL,
        # OOM) and its entry waits to expire.
        "main_alive": _alive(info.pid) if info.host == socket.gethostname() else None,
        "pools": _with_stale(pools),
        "detached": _records(details.get("detached")),
    }


# -- escaped processes (this machine only) --------------------------------------------------
def _below_live_workers(workers: Iterable[WorkerInfo], infos: list[ProcessInfo]) -> set[int]:
    """Pids below a live worker of this host that owns them (or whose owner is unknown)."""
    host = socket.gethostname()
    by_pid = {i.pid: i for i in infos}
    owned: set[int] = set()
    for worker in workers:
        if worker.host != host or not _alive(worker.pid):
            continue
        owner = details_of(worker).get("owner")
        for pid in audit.descendants(infos, [worker.pid]):
            if owner is None or by_pid[pid].owner == owner:
                owned.add(pid)
    return owned


def _in_live_owner_cgroup(info: ProcessInfo) -> bool:
    unit_cgroup = info.markers.get(markers.CGROUP)
    if not unit_cgroup:
        return False
    return owner_alive(Path(unit_cgroup).parent) is True


def _detached(workers: Iterable[WorkerInfo], infos: list[ProcessInfo]) -> set[int]:
    """Pids handed over with ``detach()``: published, marked, or recorded by their owner."""
    published = (d.get("pid") for w in workers for d in _records(details_of(w).get("detached")))
    pids = {pid for pid in published if isinstance(pid, int)}
    pids |= {i.pid for i in infos if i.unit == markers.DETACHED_UNIT}
    records_dirs = {i.markers.get(markers.RECORDS) for i in infos if i.owner is not None}
    for directory in filter(None, records_dirs):
        pids |= {pid for pid, _start in recorded(Path(directory))}
    return pids | audit.descendants(infos, pids)


def _escaped_record(info: ProcessInfo) -> Record:
    return {
        "pid": info.pid,
        "ppid": info.ppid,
        "owner": info.owner,
        "unit": info.unit,
        "generation": info.generation,
        "cmdline": " ".join(info.cmdline),
        "rss_bytes": info.rss_bytes,
        "state": info.state,
    }


def escaped_processes(workers: list[WorkerInfo]) -> list[Record]:
    """Marked processes on this machine that no live registered worker holds.

    A process of a supervisor (``corral run``) also carries CORRAL_OWNER; it is listed
    too unless it runs below a registered worker.
    """
    infos = [i for i in audit.scan() if not i.zombie]
    kept = _below_live_workers(workers, infos) | _detached(workers, infos)
    return [
        _escaped_record(i)
        for i in sorted(infos, key=lambda i: i.pid)
        if i.owner is not None and i.pid not in kept and not _in_live_owner_cgroup(i)
    ]


# -- rendering --------------------------------------------------------------------------------
def _size(rss_bytes: object) -> str:
    if not isinstance(rss_bytes, int | float):
        return "?"
    if rss_bytes < _MIB:
        return f"{rss_bytes / 1024:.1f} KiB"
    return f"{rss_bytes / _MIB:.1f} MiB"


def _process_label(proc: Record) -> Text:
    return Text.assemble(
        (f"pid {proc.get('pid', '?')}", "bold"),
        f"  {proc.get('cmdline') or '?'}",
        (f"  {proc.get('state', '?')}  RSS {_size(proc.get('rss_bytes'))}", "dim"),
    )


def _task_text(pool: Record) -> str:
    if not pool.get("task_id"):
        return ""
    running = pool.get("running_s")
    runtime = f" for {running:.1f}s" if isinstance(running, int | float) else ""
    return f"  task {pool['task_id']} {pool.get('task') or '?'}{runtime}"


def _pool_label(pool: Record) -> Text:
    label = Text.assemble(
        (f"pool pid {pool.get('pid', '?')}", "bold"),
        f"  unit {pool.get('unit') or '?'}  generation {pool.get('generation', '?')}",
        (f"  {pool.get('state') or '?'}", "cyan"),
        _task_text(pool),
        (f"  RSS {_size(pool.get('rss_bytes'))}  done {pool.get('done', '?')}", "dim"),
    )
    if pool.get("stale"):
        label.append("  STALE (old code)", style="bold red")
    return label


def _worker_label(record: Record) -> Text:
    label = Text.assemble(
        ("worker ", "bold"),
        (str(record["id"]), "bold"),
        f"  pid {record['pid']} on {record['host']}",
        f"  owner {record.get('owner') or '?'}",
        (f"  {record.get('containment') or 'containment unknown'}", "dim"),
    )
    if record.get("main_alive") is False:
        label.append("  MAIN NOT RUNNING", style="bold red")
    return label


def worker_tree(record: Record) -> Tree:
    """One worker: main, pool processes with their descendants, detached processes."""
    tree = Tree(_worker_label(record))
    for pool in record["pools"]:
        branch = tree.add(_pool_label(pool))
        for proc in pool["descendants"]:
            branch.add(_process_label(proc))
    if record["detached"]:
        detached = tree.add(Text("detached", style="yellow"))
        for proc in record["detached"]:
            detached.add(_process_label(proc))
    return tree


def _escaped_label(proc: Record) -> Text:
    return Text.assemble(
        (f"pid {proc['pid']}", "bold red"),
        f"  owner {proc.get('owner') or '?'}  unit {proc.get('unit') or '?'}",
        f"  {proc.get('cmdline') or '?'}",
    )


def escaped_tree(escaped: list[Record], *, host: str) -> Tree:
    """The escaped processes found on this machine (the scan cannot see other hosts)."""
    title = f"escaped on {host} (this machine only): {len(escaped)}"
    tree = Tree(Text(title, style="bold red" if escaped else "green"))
    for proc in escaped:
        tree.add(_escaped_label(proc))
    return tree


def render(records: list[Record], escaped: list[Record]) -> Group:
    """Every worker's tree, then the escaped processes."""
    trees = [worker_tree(r) for r in records] or [Tree(Text("no workers registered"))]
    return Group(*trees, escaped_tree(escaped, host=socket.gethostname()))
