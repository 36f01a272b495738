"""The worker main's ledger of leased messages: where each one is, and how it ends.

Every message the main reserved is in the ledger until it is settled: waiting
in the main's buffer, or held by a pool process. Settlements are batched and
written in one broker call per loop turn.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from dataclasses import dataclass

from corral.brokers.base import Broker, Delivery, LeaseStatus, Settlement
from corral.errors import BrokerError
from corral.results import TaskState

__all__ = ["Held", "Ledger"]

log = logging.getLogger("corral.worker")


@dataclass(slots=True)
class Held:
    """One leased message and the pool process holding it (None: in the buffer)."""

    seq: int
    delivery: Delivery
    pool: int | None = None
    revoked: bool = False


class Ledger:
    """Leased messages by sequence number, the undispatched buffer, pending settlements."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.held: dict[int, Held] = {}
        self.buffer: collections.deque[int] = collections.deque()
        self.pending: list[Settlement] = []
        self._next_seq = 0
        self.settled = 0
        self.stale = 0

    def __len__(self) -> int:
        return len(self.held)

    def add(self, deliveries: list[Delivery]) -> None:
        """Record new leases; they wait in the buffer for a pool process."""
        for delivery in deliveries:
            self._next_seq += 1
            self.held[self._next_seq] = Held(self._next_seq, delivery)
            self.buffer.append(self._next_seq)

    def settle(
        self,
        seq: int,
        state: TaskState,
        *,
        payload: bytes = b"",
        delay_s: float = 0.0,
        reason: str = "",
        crashed: bool = False,
    ) -> None:
        """Queue the outcome of ``seq``; it leaves the ledger now."""
        held = self.held.pop(seq, None)
        if held is None:
            return
        if held.revoked and state is TaskState.RETRYING:
            state = TaskState.REVOKED
        d = held.delivery
        self.pending.append(Settlement(d.id, d.token, state, payload, delay_s, reason, crashed))

    def hand_back_buffer(self) -> None:
        """Hand every undispatched message back to the broker for immediate redelivery."""
        while self.buffer:
            self.settle(self.buffer.popleft(), TaskState.QUEUED)

    def flush(self) -> None:
        """Write pending settlements in one broker call; keep them if the broker fails."""
        if not self.pending:
            return
        batch = self.pending
        try:
            applied = self.broker.settle(batch)
        except BrokerError as error:
            log.warning("could not settle %d tasks, will retry: %s", len(batch), error)
            return
        self.pending = []
        self.settled += len(batch)
        for settlement, ok in zip(batch, applied, strict=True):
            if not ok:
                self.stale += 1
                log.warning(
                    "outcome of task %s dropped: its lease had expired and it was delivered "
                    "again (lease_s too short for this task?)",
                    settlement.id,
                )

    def renew(self) -> list[tuple[Held, LeaseStatus]]:
        """Extend every lease; return the ones that are no longer simply held."""
        if not self.held:
            return []
        items = list(self.held.values())
        try:
            statuses = self.broker.extend([(h.delivery.id, h.delivery.token) for h in items])
        except BrokerError as error:
            log.warning("could not renew %d leases, will retry: %s", len(items), error)
            return []
        return [(h, s) for h, s in zip(items, statuses, strict=True) if s is not LeaseStatus.HELD]

    def drop(self, seq: int) -> None:
        """Forget a message whose lease is lost (another worker has it now)."""
        self.held.pop(seq, None)
        with contextlib.suppress(ValueError):
            self.buffer.remove(seq)
