"""The worker main: reserve, dispatch to pool processes, settle, renew, supervise.

One thread runs the loop. When there is nothing to reserve it waits for the
broker through its selector (corral.worker.ready: on the broker's own socket
where the broker allows it, else through a thread that blocks on
``wait_ready``). Only the main talks to the broker (pool processes never do),
so leases are renewed here and a task that holds its pool process's GIL for
minutes keeps its lease.

Signals (handlers only record; the loop acts):
TERM/INT warm stop; second INT or QUIT cold stop; HUP reload.
"""

from __future__ import annotations

import logging
import os
import select
import selectors
import signal
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from corral.app import Corral
from corral.brokers.base import Broker, LeaseStatus, WorkerInfo
from corral.errors import BrokerError, BrokerUnavailable
from corral.exitcodes import ExitCode
from corral.process import ProcessError, Reaper, choose_containment, reclaim_abandoned
from corral.results import TaskState
from corral.signals import SignalRecorder
from corral.worker import protocol
from corral.worker.config import WorkerConfig
from corral.worker.ledger import Held, Ledger
from corral.worker.pool import PoolHandle, PoolSpec
from corral.worker.pools import Pools
from corral.worker.ready import make_waiter
from corral.worker.tree import worker_details

__all__ = ["Worker"]

log = logging.getLogger("corral.worker")

_OUTCOME_STATES = {
    protocol.OK: TaskState.SUCCEEDED,
    protocol.RETRY: TaskState.RETRYING,
    protocol.FAIL: TaskState.FAILED,
    protocol.DEAD: TaskState.DEAD,
}
UNSAFE_NO_ORPHAN_REAPING = "CORRAL_UNSAFE_NO_ORPHAN_REAPING"
"""Set to 1 to stop reaping orphans: only for the test that shows the zombies it prevents."""
IDLE_TICK_S = 1.0
CLEANUP_EVERY_S = 60.0
BUSY_TICK_S = 0.05
FIRST_REGISTER_BACKOFF_S = 0.5
MAX_REGISTER_BACKOFF_S = 10.0


class Worker:
    """``corral worker``: a main process and ``concurrency`` pool processes."""

    def __init__(self, app: Corral, config: WorkerConfig) -> None:
        self.app = app
        self.config = config
        self.broker: Broker = app.broker
        self.ledger = Ledger(self.broker)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.owner_id = f"worker-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # The one reaper of this process: pool processes, and every orphan that
        # re-parents to us as subreaper (or as PID 1 of a container: seeds/003).
        reaper = Reaper(reap_orphans=os.environ.get(UNSAFE_NO_ORPHAN_REAPING) != "1")
        self.containment = choose_containment(
            force=None if config.containment == "auto" else config.containment,  # type: ignore[arg-type]
            owner_id=self.owner_id,
            reaper=reaper.install(),
        )
        spec = PoolSpec(
            config.app_ref, config.max_memory_per_child_mb, config.log_level, config.log_format
        )
        self.pools = Pools(spec, config, app.codec, self._on_frame, self.containment)
        self.selector = selectors.DefaultSelector()
        self.signals = SignalRecorder()
        self.waiter = make_waiter(app, config.queues)
        self.stopping = False
        self.stop_deadline = 0.0
        self.waiting_for_messages = False
        self.tasks_done = 0
        self.next_renew = 0.0
        self.next_heartbeat = 0.0
        self.next_cleanup = time.monotonic() + CLEANUP_EVERY_S
        self.registered = False

    # -- lifecycle --------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; the exit code (see ExitCode)."""
        self._start()
        try:
            while not (self.stopping and not self.pools.alive):
                self._tick()
        finally:
            self._finish()
        return ExitCode.CHILD_DIED if self.pools.abnormal_deaths else ExitCode.OK

    def _start(self) -> None:
        self._reclaim_abandoned_units()
        self.signals.install()
        self.selector.register(self.signals.fd, selectors.EVENT_READ, "signals")
        self.containment.reaper.install_sigchld()
        self.selector.register(self.containment.reaper.fileno(), selectors.EVENT_READ, "reaper")
        self.waiter.register(self.selector)
        if not self._register():
            return
        self.waiter.start()
        self.pools.fill(self.selector)
        log.info(
            "worker %s: %d pool processes, queues %s, broker %s, containment: %s",
            self.id,
            self.config.concurrency,
            ",".join(self.config.queues),
            redacted(self.app.broker_url),
            self.containment.describe(),
        )

    def _register(self) -> bool:
        """Register with the broker, retrying with backoff while it is unreachable.

        A worker started before its broker (a boot order, a Redis restart) waits for
        it instead of exiting. False when a stop signal came first.
        """
        backoff_s = FIRST_REGISTER_BACKOFF_S
        while True:
            try:
                self.broker.register_worker(self._info())
            except BrokerUnavailable as error:
                log.warning(
                    "broker %s unreachable at start, retrying in %.1fs: %s",
                    redacted(self.app.broker_url),
                    backoff_s,
                    error,
                )
            else:
                self.registered = True
                return True
            if self._stop_signalled_within(backoff_s):
                return False
            backoff_s = min(backoff_s * 2, MAX_REGISTER_BACKOFF_S)

    def _stop_signalled_within(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a signal; True (and stopping) if it asks to stop."""
        deadline = time.monotonic() + timeout_s
        while (left_s := deadline - time.monotonic()) > 0:
            select.select([self.signals.fd], [], [], left_s)
            if any(s != signal.SIGHUP for s in self.signals.take()):
                log.info("stopped before the broker could be reached")
                self.stopping = True
                return True
        return False

    def _finish(self) -> None:
        self.pools.kill_all(self.ledger)
        self._end_wait(close=True)  # what a wait ending now leased goes back with the rest
        self.ledger.hand_back_buffer()
        self.ledger.flush()
        if self.registered:
            self._unregister()
        self.signals.uninstall()
        self._release_containment()
        log.info(
            "worker %s stopped: %d tasks done, %d abnormal pool deaths",
            self.id,
            self.pools.tasks_done,
            self.pools.abnormal_deaths,
        )

    def _unregister(self) -> None:
        try:
            self.broker.unregister_worker(self.id)
        except BrokerError as error:
            log.warning("could not unregister worker %s: %s", self.id, error)

    def _reclaim_abandoned_units(self) -> None:
        """Kill what is left of workers (or supervisors) on this machine that died by SIGKILL.

        Their pool processes died with them (parent-death signal), but whatever their
        tasks started is still in their cgroups: old code must not keep running beside
        new code (seeds/002).
        """
        if self.containment.kind != "cgroup":
            return
        for owner in reclaim_abandoned():
            log.warning("reclaimed units of a dead owner: %s", owner.describe())

    def _release_containment(self) -> None:
        """Close every unit; detached processes stay (recorded, still our descendants)."""
        reaper = self.containment.reaper
        try:
            self.containment.close()
        except ProcessError as error:
            log.error("could not empty every unit: %s", error)
        reaper.uninstall_sigchld()
        reaper.reap_nowait()

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.config.queues,
            concurrency=self.config.concurrency,
            started_at=time.time(),
        )

    # -- the loop ---------------------------------------------------------------
    def _tick(self) -> None:
        busy = self.stopping or self.pools.any_time_limited() or self.pools.any_queued()
        woke = signalled = False
        for key, mask in self.selector.select(BUSY_TICK_S if busy else IDLE_TICK_S):
            if key.data == "waiter":
                woke = True  # handled after the settle below
            elif key.data == "signals":
                signalled = True
            else:
                self._on_event(key.data, mask)
        self._on_signals(self.signals.take(drain=signalled))
        self.ledger.flush()  # first: a caller may be waiting on these results
        self.pools.check_idle_leftovers()  # before new tasks make the pools busy again
        wait = False
        if woke and self.waiter.on_event():
            wait = self._take_from_wait()
            self.pools.dispatch(self.ledger)  # before any further reserve's round trip
        wait = self._reserve() or wait
        self.pools.dispatch(self.ledger)
        self.ledger.flush()
        if wait:  # after the dispatch: the task just reserved reaches its pool process first
            self.waiter.request(limit=self._reserve_limit(), owner=self.id)
        self._on_schedule()

    def _on_event(self, data: Any, mask: int) -> None:
        if data == "reaper":
            self.containment.reaper.wait_sigchld(timeout_s=0)
        elif isinstance(data, PoolHandle):
            if mask & selectors.EVENT_WRITE:
                self.pools.flush_writes(data, self.selector)
            if mask & selectors.EVENT_READ:
                self.pools.read(data, self.selector, self.ledger)

    def _take_from_wait(self) -> bool:
        """The wait for messages ended: take what it leased, if it reserved (the
        broker did so in the round trip that ended it). True when that was fewer
        than asked, so the loop should wait again."""
        self.waiting_for_messages = False
        taken = self.waiter.take()
        if taken is None:
            return False  # it reserved nothing: _reserve looks now
        self.ledger.add(taken.deliveries)
        if self.stopping:  # ended by the stop, whose hand-back returns what it leased
            return False
        self.waiting_for_messages = len(taken.deliveries) < taken.limit
        return self.waiting_for_messages

    def _end_wait(self, *, close: bool = False) -> None:
        """End a wait in progress (at a stop); what it leased goes back to the broker.
        ``close``: the waiter is done for good. Never raises: the stop must go on."""
        try:
            if close:
                self.waiter.stop()
            else:
                self.waiter.cancel()
            self._take_from_wait()
        except Exception as error:
            log.error("could not end the wait for messages cleanly: %s", error)

    def _reserve_limit(self) -> int:
        """How many messages to lease now: the room the pool processes and their
        prefetch have, or 0 when none accepts tasks or the room is too small to be
        worth a round trip (a quarter of it)."""
        if self.stopping or not self.pools.accepting:
            return 0
        target = self.pools.capacity() + self.config.concurrency * self.config.prefetch
        room = target - len(self.ledger)
        return room if room >= max(1, target // 4) else 0

    def _reserve(self) -> bool:
        """Lease what the pool processes have room for; True when the broker had
        fewer messages than that, so the loop should wait for more."""
        if self.waiting_for_messages:
            return False
        room = self._reserve_limit()
        if not room:
            return False
        try:
            deliveries = self.broker.reserve(self.config.queues, room, owner=self.id)
        except BrokerError as error:
            log.warning("could not reserve from %s: %s", redacted(self.app.broker_url), error)
            deliveries = []
        self.ledger.add(deliveries)
        self.waiting_for_messages = len(deliveries) < room
        return self.waiting_for_messages

    def _on_schedule(self) -> None:
        now = time.monotonic()
        self.pools.enforce_time_limits(self.ledger)
        self.pools.rebalance()
        if now >= self.next_renew:
            self.next_renew = now + self._renew_interval_s()
            self._renew_leases()
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + self.config.heartbeat_s
            self._heartbeat()
        if now >= self.next_cleanup:
            self.next_cleanup = now + CLEANUP_EVERY_S
            self._clean_up_broker()
        self.pools.reap(self.selector, self.ledger)
        if self.stopping:
            if now >= self.stop_deadline:
                self._cold_stop("grace period over")
        else:
            self.pools.fill(self.selector)

    def _clean_up_broker(self) -> None:
        """Expired results and long-silent workers leave the broker (bounded storage)."""
        try:
            removed = self.broker.cleanup()
        except BrokerError as error:
            log.warning("broker cleanup failed: %s", error)
            return
        if removed:
            log.debug("broker cleanup removed %d expired rows", removed)

    def _renew_interval_s(self) -> float:
        shortest = min((h.delivery.lease_s for h in self.ledger.held.values()), default=30.0)
        return max(0.2, min(shortest / 3, 5.0))

    def _renew_leases(self) -> None:
        for held, status in self.ledger.renew():
            if status is LeaseStatus.REVOKED:
                self._terminate(held)
            elif status is LeaseStatus.LOST:
                log.warning("lease of task %s lost: another worker may run it", held.delivery.id)
                if held.pool is None:
                    self.ledger.drop(held.seq)

    def _terminate(self, held: Held) -> None:
        """A revoke with terminate: kill the task where it runs, or drop it unstarted."""
        held.revoked = True
        if held.pool is None:
            self.ledger.buffer.remove(held.seq)
            self.ledger.settle(held.seq, TaskState.REVOKED)
        else:
            self.pools.terminate_if_running(held, self.ledger)

    def _heartbeat(self) -> None:
        details = worker_details(
            list(self.pools.by_pid.values()), self.ledger, self.containment, self.pools.generation
        )
        self.tasks_done = self.pools.tasks_done
        try:
            self.broker.heartbeat(self.id, tasks_done=self.tasks_done, details=details)
        except BrokerError as error:
            log.warning("heartbeat failed: %s", error)

    def _on_frame(self, pool: PoolHandle, frame: tuple[Any, ...]) -> None:
        """A frame from a pool process (called by Pools.read)."""
        if frame[0] == "done":
            _, seq, outcome, payload, delay_s, reason = frame
            self.ledger.settle(
                seq, _OUTCOME_STATES[outcome], payload=payload, delay_s=delay_s, reason=reason
            )

    # -- signals ----------------------------------------------------------------
    def _on_signals(self, received: list[int]) -> None:
        for signum in received:
            if signum == signal.SIGHUP:
                self._reload()
            elif signum == signal.SIGQUIT or (signum == signal.SIGINT and self.stopping):
                self._cold_stop(f"{signal.Signals(signum).name}")
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self._warm_stop(signal.Signals(signum).name)

    def _warm_stop(self, why: str) -> None:
        if self.stopping:
            return
        log.info("%s: warm stop: finishing running tasks within %gs", why, self.config.grace_s)
        self.stopping = True
        self.stop_deadline = time.monotonic() + self.config.grace_s
        self._end_wait()
        self.ledger.hand_back_buffer()
        self.pools.stop_all()

    def _cold_stop(self, why: str) -> None:
        log.warning("%s: cold stop: handing running tasks back and killing pool processes", why)
        self.stopping = True
        self.ledger.hand_back_buffer()
        self.pools.kill_all(self.ledger)

    def _reload(self) -> None:
        if self.stopping:
            return
        self.pools.reload(self.selector)
        log.info("SIGHUP: reload: generation %d starting with fresh code", self.pools.generation)


def redacted(url: str) -> str:
    """``url`` without its password, for logs (a worker's log must not leak credentials)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
