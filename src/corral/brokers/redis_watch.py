"""The Redis broker's inbox watch: a wait for ready messages that never blocks its caller.

It is :meth:`RedisBroker.wait_ready` cut into steps the worker's loop drives
from its selector, on a connection of the watch's own:

1. ``wait_bound`` (a script): accepts the inbox and answers how long until a
   message may be deliverable (0: now; -1: nothing scheduled or leased); skipped
   when the caller knows that answer already (a short reserve just gave it);
2. unless that is now, ``BLMOVE`` of the inbox onto itself, bounded by it:
   its reply arrives when something is sent, a script nudges, or the bound
   passes. A watch asked to reserve sends the ``reserve`` script in the same
   write: Redis runs it the moment ``BLMOVE`` returns (a connection's commands
   run in order), so the reply that ends the wait carries the leased messages,
   and a lone task reaches its worker one round trip sooner.

Each step's reply makes the socket readable; :meth:`InboxWatch.finish` reads it
and sends the next step, so the loop never waits on a round trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from corral.brokers.base import Delivery
from corral.brokers.redis_connection import PendingReply, RedisConnection
from corral.brokers.redis_scripts import AGAIN, Script
from corral.brokers.watch import ReadyWatch, Taken
from corral.errors import BrokerError

__all__ = ["InboxWatch", "WatchReserve"]

MIN_BLOCK_S = 0.001  # Redis reads a blocking timeout of 0 as "forever"


@dataclass(frozen=True, slots=True)
class WatchReserve:
    """The reserve a watch runs as its wait ends: the script, its ARGV, the limit it
    asks for, how its reply becomes deliveries, and how to wake the wait early."""

    script: Script
    argv: list[Any]
    limit: int
    parse: Callable[[Any], list[Delivery]]
    nudge: Callable[[], None]


class InboxWatch(ReadyWatch):
    """A started wait on the inbox (see the module docstring)."""

    def __init__(
        self,
        conn: RedisConnection,
        bound: Script,
        argv: Sequence[Any],
        inbox: str,
        timeout_s: float,
        max_block_s: float,
        *,
        bound_s: float | None = None,
        reserve: WatchReserve | None = None,
    ) -> None:
        self._bound = bound
        self._argv = list(argv)
        self._inbox = inbox
        self._deadline = time.monotonic() + timeout_s
        self._max_block_s = max_block_s
        self._reserve = reserve
        self._taken: Taken | None = None
        self._blocking = bound_s is not None
        if bound_s is None:
            self._pending: PendingReply = conn.begin(("EVALSHA", bound.sha, 0, *self._argv))
        else:
            self._pending = conn.begin(*self._blocking_step(self._wait_s(bound_s)))

    def fileno(self) -> int:
        """Readable when the current step's reply has arrived."""
        return self._pending.fileno()

    def finish(self) -> bool:
        """Read the step's reply: True when the wait has ended, False when the next
        step was sent (keep selecting on :meth:`fileno`)."""
        if self._blocking:
            self._end_blocking_step()
            return True
        try:
            reply = self._pending.read()
        except NoScriptError:  # a restarted or flushed Redis: send the source once
            self._pending.send(("EVAL", self._bound.source, 0, *self._argv))
            return False
        except ResponseError as error:
            if str(error) == AGAIN:  # a backlog beyond one batch: accept the next one
                self._pending.send(("EVALSHA", self._bound.sha, 0, *self._argv))
                return False
            self._pending.release()
            raise BrokerError(f"Redis refused a corral command: {error}") from error
        return not self._block(float(reply))

    def taken(self) -> Taken | None:
        """What the reserve sent with the blocking step leased, and its limit; None
        when none ran (the wait ended at its first step, or the script was missing)."""
        return self._taken

    def cancel(self) -> None:
        """Abandon the wait. A watch whose reserve is in flight is ended instead (a
        nudge on the inbox wakes it), so nothing it leases is left unseen until its
        lease expires: :meth:`taken` then has it. Its connection is closed otherwise."""
        if not (self._blocking and self._reserve is not None):
            self._pending.cancel()
            return
        try:
            self._reserve.nudge()
            self._end_blocking_step()
        except BrokerError:
            self._pending.cancel()

    def _block(self, bound_s: float) -> bool:
        """Send the blocking step; False (the wait is over) when there is no time left."""
        wait_s = self._wait_s(bound_s)
        if wait_s < MIN_BLOCK_S:
            self._pending.release()
            return False
        self._blocking = True
        self._pending.send(*self._blocking_step(wait_s))
        return True

    def _end_blocking_step(self) -> None:
        """Read the blocking step's reply, and the reserve's after it (even after an
        error reply: the script may have leased), then release."""
        refused: ResponseError | None = None
        try:
            try:
                self._pending.read()  # the element moved onto itself, or None at the bound
            except ResponseError as error:  # read whole: the connection is still in step
                refused = error
            if self._reserve is not None:
                self._taken = self._read_reserve(self._reserve)
        except BaseException:
            self._pending.cancel()  # a reply may still be unread
            raise
        self._pending.release()
        if refused is not None:
            raise BrokerError(f"Redis refused a corral command: {refused}") from refused

    def _read_reserve(self, reserve: WatchReserve) -> Taken | None:
        try:
            reply = self._pending.read()
        except NoScriptError:  # a restarted or flushed Redis: the caller reserves itself
            return None
        except ResponseError as error:
            raise BrokerError(f"Redis refused a corral command: {error}") from error
        return Taken(reserve.parse(reply), reserve.limit)

    def _wait_s(self, bound_s: float) -> float:
        """How long to block for a bound (-1: none): never past the deadline."""
        left_s = self._deadline - time.monotonic()
        return left_s if bound_s < 0 else min(bound_s, left_s)

    def _blocking_step(self, wait_s: float) -> list[tuple[Any, ...]]:
        """``BLMOVE`` of the inbox onto itself for ``wait_s`` (at most ``max_block_s``),
        which takes nothing and keeps the order; then the reserve, if asked for."""
        wait_s = max(MIN_BLOCK_S, min(wait_s, self._max_block_s))
        commands: list[tuple[Any, ...]] = [
            ("BLMOVE", self._inbox, self._inbox, "RIGHT", "RIGHT", f"{wait_s:.3f}")
        ]
        if self._reserve is not None:
            commands.append(("EVALSHA", self._reserve.script.sha, 0, *self._reserve.argv))
        return commands
