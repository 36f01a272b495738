"""The worker main's pool processes: start, feed, watch, replace, stop.

A pool process that dies is reaped here (the only place the worker main waits
for children), its death logged with the signal name and 128+N, the task it was
running handed back for redelivery (counted towards ``max_deliveries``), the
tasks waiting in its pipe given to another pool process, and it is replaced.
"""

from __future__ import annotations

import logging
import os
import selectors
import time
from collections.abc import Callable
from typing import Any

from corral.errors import TimeLimitExceeded
from corral.exitcodes import ExitCode
from corral.message import encode_remote_error
from corral.options import backoff_delay_s
from corral.process import Containment, ExitStatus, ProcessError, kill_tree
from corral.results import TaskState
from corral.serializers import Codec
from corral.worker.config import WorkerConfig
from corral.worker.ledger import Held, Ledger
from corral.worker.leftovers import check_leftovers
from corral.worker.pool import YIELD_AFTER_S, PoolHandle, PoolSpec, TaskLimits

__all__ = ["Pools"]

log = logging.getLogger("corral.worker")

FrameHandler = Callable[[PoolHandle, tuple[Any, ...]], None]
_EXPECTED_EXITS = {ExitCode.OK, ExitCode.RETIRED}
MAX_START_BACKOFF_S = 30.0
KILL_TIMEOUT_S = 5.0
SCAN_EVERY_S = 0.5
REAP_EVERY_S = 1.0  # besides after every SIGCHLD


class Pools:
    """Every pool process of one worker, by pid."""

    def __init__(
        self,
        spec: PoolSpec,
        config: WorkerConfig,
        codec: Codec,
        on_frame: FrameHandler,
        containment: Containment,
    ) -> None:
        self.spec = spec
        self.codec = codec
        self.containment = containment
        self.reaper = containment.reaper
        self.started = 0
        self.config = config
        self.on_frame = on_frame
        self.by_pid: dict[int, PoolHandle] = {}
        self.generation = 1
        self.abnormal_deaths = 0
        self.tasks_done = 0
        self.failed_starts = 0
        self.next_start_at = 0.0
        self.killed: dict[int, str] = {}

    # -- state ------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """True while any pool process has not been reaped."""
        return bool(self.by_pid)

    @property
    def accepting(self) -> bool:
        """True when some pool process can take tasks (or is starting and will)."""
        return any(not p.stopping for p in self.by_pid.values())

    def any_time_limited(self) -> bool:
        """True if a running task has a hard time limit (the loop then ticks faster)."""
        return any(p.limits and p.outstanding for p in self.by_pid.values())

    def any_queued(self) -> bool:
        """True if a pool process holds tasks behind its running one (watch for long ones)."""
        return any(len(p.outstanding) > 1 for p in self.by_pid.values())

    # -- starting ---------------------------------------------------------------
    def fill(self, selector: selectors.BaseSelector) -> None:
        """Start pool processes until ``concurrency`` of the current generation run."""
        current = [
            p for p in self.by_pid.values() if p.generation == self.generation and not p.stopping
        ]
        missing = self.config.concurrency - len(current)
        if missing <= 0 or time.monotonic() < self.next_start_at:
            return
        for _ in range(missing):
            self._start(selector)

    def _start(self, selector: selectors.BaseSelector) -> None:
        self.started += 1
        unit = self.containment.create_unit(f"pool-{self.started}", generation=self.generation)
        pool = PoolHandle(self.spec, unit, dict(os.environ))
        self.by_pid[pool.pid] = pool
        selector.register(pool.read_fd, selectors.EVENT_READ, pool)
        log.debug("started pool process %d (generation %d)", pool.pid, self.generation)

    def reload(self, selector: selectors.BaseSelector) -> None:
        """Start a new generation; old pool processes finish their task and leave."""
        self.generation += 1
        for pool in list(self.by_pid.values()):
            pool.stop()
        self.next_start_at = 0.0
        self.fill(selector)

    # -- feeding ----------------------------------------------------------------
    def dispatch(self, ledger: Ledger) -> None:
        """Hand buffered tasks to ready pool processes, least loaded first."""
        if not ledger.buffer:
            return
        ready = [p for p in self.by_pid.values() if p.ready and not p.stopping]
        now = time.monotonic()
        while ledger.buffer and ready:
            pool = min(ready, key=lambda p: len(p.outstanding))
            if len(pool.outstanding) >= self._window(pool, now):
                ready.remove(pool)
                continue
            held = ledger.held[ledger.buffer.popleft()]
            held.pool = pool.pid
            d = held.delivery
            pool.dispatch(held.seq, d.id, d.body, d.attempts)
            if (
                self.config.max_tasks_per_child
                and pool.dispatched >= self.config.max_tasks_per_child
            ):
                pool.retire()
                ready.remove(pool)

    def _window(self, pool: PoolHandle, now: float) -> int:
        return pool.window(now, self.config.window, self.config.max_window)

    def capacity(self) -> int:
        """How many tasks the pool processes can hold now (for reserving)."""
        now = time.monotonic()
        return sum(self._window(p, now) for p in self.by_pid.values() if not p.stopping)

    def rebalance(self) -> None:
        """Tasks queued behind a long one go back to the main, for other pool processes."""
        now = time.monotonic()
        for pool in self.by_pid.values():
            if len(pool.outstanding) > 1 and now - pool.head_started_at > YIELD_AFTER_S:
                pool.ask_to_yield()

    def flush_writes(self, pool: PoolHandle, selector: selectors.BaseSelector) -> None:
        """Write what the pipe would not take earlier."""
        pool.writer.flush()
        self._watch_writes(pool, selector)

    def _watch_writes(self, pool: PoolHandle, selector: selectors.BaseSelector) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if pool.writer.pending else 0)
        if not pool.exited:
            selector.modify(pool.read_fd, events, pool)

    # -- reading ----------------------------------------------------------------
    def read(self, pool: PoolHandle, selector: selectors.BaseSelector, ledger: Ledger) -> None:
        """Handle every frame the pool process sent; notice when it closed its pipe."""
        frames = pool.reader.read_from(pool.read_fd)
        if frames is None:
            pool.exited = True
            selector.unregister(pool.read_fd)
            return
        for frame in frames:
            self._on_frame(pool, frame, ledger)
        # The leftover check waits for check_idle_leftovers, after the loop has settled
        # these tasks: a caller waiting on a result must not wait for a cgroup read.
        if pool.writer.pending:
            self._watch_writes(pool, selector)

    def _on_frame(self, pool: PoolHandle, frame: tuple[Any, ...], ledger: Ledger) -> None:
        kind = frame[0]
        if kind == "done":
            if frame[1] not in pool.outstanding:
                log.warning(
                    "pool process %d reported a task it does not hold (seq %d): a forked "
                    "copy of it is writing to its pipe? ignored",
                    pool.pid,
                    frame[1],
                )
                return
            held = ledger.held.get(frame[1])
            if held is not None:
                limits = pool.limits.get(held.delivery.task)
                policy = limits.leftovers if limits else "kill"
                if not pool.finished_tasks:
                    pool.finished_tasks_since = time.monotonic()
                pool.finished_tasks.append((held.delivery.task, policy))
            pool.finished(frame[1])
            self.tasks_done += 1
            self.failed_starts = 0
            self.on_frame(pool, frame)
            self._check_revoked_head(pool, ledger)
        elif kind == "hello":
            pool.accept_hello(frame)
            self.failed_starts = 0
        elif kind == "released":
            pool.released(frame[1])
            self._give_back(frame[1], ledger)
        elif kind == "bye":
            log.debug("pool process %d leaving: %s", pool.pid, frame[2])

    def check_idle_leftovers(self) -> None:
        """Check each idle pool process's unit for what its finished tasks left running.

        The loop calls this after settling and before dispatching: a pool process that
        is idle now has no task of its own running, so every other member is a leftover.
        """
        for pool in self.by_pid.values():
            self._check_leftovers(pool)

    def _check_leftovers(self, pool: PoolHandle) -> None:
        # Only while it runs nothing: then every other member of its unit is a leftover.
        # A cgroup lists its members with one read; the fallback scans /proc, so there
        # the check runs at most every SCAN_EVERY_S, for every task finished meanwhile.
        if not pool.finished_tasks or pool.outstanding:
            return
        now = time.monotonic()
        if self.containment.kind != "cgroup" and now - pool.leftovers_checked_at < SCAN_EVERY_S:
            return
        pool.leftovers_checked_at = now
        check_leftovers(pool, pool.finished_tasks)
        pool.finished_tasks.clear()

    def _give_back(self, seqs: list[int], ledger: Ledger) -> None:
        """Tasks a pool process did not start: to another pool process, or to the broker."""
        for seq in reversed(seqs):
            held = ledger.held.get(seq)
            if held is None:
                continue
            held.pool = None
            if self.accepting:
                ledger.buffer.appendleft(seq)
            else:
                ledger.settle(seq, TaskState.QUEUED)

    # -- limits and revokes -----------------------------------------------------
    def enforce_time_limits(self, ledger: Ledger) -> None:
        """Kill pool processes whose running task passed its hard limit (``timeout_s``)."""
        now = time.monotonic()
        for pool in list(self.by_pid.values()):
            seq = pool.running
            if seq is None or seq not in ledger.held or pool.pid in self.killed:
                continue
            held = ledger.held[seq]
            limits = pool.limits.get(held.delivery.task)
            if limits and limits.timeout_s and now - pool.head_started_at > limits.timeout_s:
                self._time_limit(pool, held, limits, ledger)

    def _time_limit(self, pool: PoolHandle, held: Held, limits: TaskLimits, ledger: Ledger) -> None:
        d = held.delivery
        message = f"{d.task}() ran past its hard time limit (timeout_s={limits.timeout_s:g})"
        log.error("task %s: %s; killing pool process %d", d.id, message, pool.pid)
        payload = encode_remote_error(self.codec, TimeLimitExceeded.__name__, message)
        self._kill(pool, "time limit")
        pool.released([held.seq])
        if limits.retry_on_timeout and d.attempts < limits.retries:
            delay_s = backoff_delay_s(
                d.attempts + 1,
                limits.retry_backoff_s,
                limits.retry_backoff_max_s,
                limits.retry_jitter,
            )
            ledger.settle(held.seq, TaskState.RETRYING, payload=payload, delay_s=delay_s)
        else:
            ledger.settle(held.seq, TaskState.FAILED, payload=payload, reason=message)

    def terminate_if_running(self, held: Held, ledger: Ledger) -> None:
        """Kill the pool process if ``held`` is its running task (revoke with terminate)."""
        pool = self.by_pid.get(held.pool or -1)
        if pool is None or pool.running != held.seq:
            return  # it will be killed when it becomes the running task
        log.warning(
            "task %s revoked with terminate: killing pool process %d", held.delivery.id, pool.pid
        )
        self._kill(pool, "revoked")
        pool.released([held.seq])
        ledger.settle(held.seq, TaskState.REVOKED)

    def _check_revoked_head(self, pool: PoolHandle, ledger: Ledger) -> None:
        seq = pool.running
        if seq is not None and seq in ledger.held and ledger.held[seq].revoked:
            self.terminate_if_running(ledger.held[seq], ledger)

    # -- stopping ---------------------------------------------------------------
    def stop_all(self) -> None:
        """Warm stop: every pool process finishes its task and leaves."""
        for pool in self.by_pid.values():
            pool.stop()

    def kill_all(self, ledger: Ledger) -> None:
        """Cold stop: hand every held task back now and kill every pool process."""
        for pool in list(self.by_pid.values()):
            for seq in list(pool.outstanding):
                ledger.settle(seq, TaskState.QUEUED)
            pool.outstanding.clear()
            self._kill(pool, "stop")
        for pool in list(self.by_pid.values()):
            try:
                self.reaper.wait_exit(pool.ref, timeout_s=10.0)
            except ProcessError as error:
                log.error("pool process %d did not exit: %s", pool.pid, error)
            self._close_unit(pool)
            self._forget(pool)

    def _kill(self, pool: PoolHandle, why: str) -> None:
        """Kill the pool process and everything its tasks started (its whole unit)."""
        self.killed[pool.pid] = why
        pool.stopping = True
        try:
            report = kill_tree(pool.unit, grace_s=0.0, kill_timeout_s=KILL_TIMEOUT_S)
        except ProcessError as error:
            log.error("could not empty unit of pool process %d: %s", pool.pid, error)
            return
        others = [p for p in report.sigkilled if p.pid != pool.pid]
        if others:
            log.warning(
                "killed with pool process %d (%s): %s",
                pool.pid,
                why,
                "; ".join(p.describe() for p in others),
            )

    # -- reaping ----------------------------------------------------------------
    def reap(self, selector: selectors.BaseSelector, ledger: Ledger) -> None:
        """Reap pool processes that exited; hand back their tasks; count abnormal deaths."""
        self.reaper.reap_if_due(every_s=REAP_EVERY_S)
        for pool in list(self.by_pid.values()):
            status = self.reaper.status_of(pool.ref)
            if status is None:
                continue
            if not pool.exited:
                self.read(pool, selector, ledger)  # the last frames it wrote
                if not pool.exited:
                    selector.unregister(pool.read_fd)
            self._on_exit(pool, status, ledger)

    def _on_exit(self, pool: PoolHandle, status: ExitStatus, ledger: Ledger) -> None:
        why = self.killed.pop(pool.pid, "")
        if pool.outstanding and not why:
            head = pool.outstanding.popleft()
            task = ledger.held[head].delivery if head in ledger.held else None
            log.error(
                "pool process %d died running task %s (%s): %s; it will be delivered again",
                pool.pid,
                task.id if task else "?",
                task.task if task else "?",
                status.describe(),
            )
            ledger.settle(head, TaskState.QUEUED, crashed=True)
        self._give_back(list(pool.outstanding), ledger)
        if not why and (status.killed or status.exitcode not in _EXPECTED_EXITS):
            self.abnormal_deaths += 1
            if not pool.ready:
                self._back_off_starts()
            log.error("pool process %d %s", pool.pid, status.describe())
        self._close_unit(pool)
        self._forget(pool)

    def _close_unit(self, pool: PoolHandle) -> None:
        """Stopped means the whole tree is gone: kill what the pool process left behind."""
        unit = pool.unit
        leftovers = [p for p in unit.pids() if p != pool.pid]
        if leftovers:
            log.warning(
                "pool process %d exited leaving %d processes in its unit; killing them",
                pool.pid,
                len(leftovers),
            )
        try:
            unit.close(kill_timeout_s=KILL_TIMEOUT_S)
        except ProcessError as error:
            log.error("%s", error)

    def _back_off_starts(self) -> None:
        self.failed_starts += 1
        delay_s = min(MAX_START_BACKOFF_S, 0.1 * 2**self.failed_starts)
        self.next_start_at = time.monotonic() + delay_s
        log.error("pool process died before it was ready; next start in %.1fs", delay_s)

    def _forget(self, pool: PoolHandle) -> None:
        pool.close_pipes()
        self.by_pid.pop(pool.pid, None)
