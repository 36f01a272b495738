"""Waiting for ready messages without a thread: a watch the worker's loop selects on.

:meth:`Broker.wait_ready` blocks, so the worker runs it in a thread that wakes
the loop through a pipe: one more process wake-up on the way to every task.
A broker whose wait is one blocking command on a socket (Redis) can instead
*start* the wait and hand the loop the socket: the loop selects on it beside
its pool processes' pipes and reserves the moment the reply arrives.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from corral.brokers.base import Delivery

__all__ = ["ReadyWatch", "ReadyWatching", "Taken"]


class Taken(NamedTuple):
    """What a watch asked to reserve leased as its wait ended, and the limit it had."""

    deliveries: list[Delivery]
    limit: int


class ReadyWatch(abc.ABC):
    """A started wait for ready messages (see :meth:`ReadyWatching.watch_ready`)."""

    @abc.abstractmethod
    def fileno(self) -> int:
        """The descriptor that becomes readable when the wait has ended."""

    @abc.abstractmethod
    def finish(self) -> bool:
        """Consume what made :meth:`fileno` readable: True when the wait has ended,
        False when it goes on (keep selecting on :meth:`fileno`, which may change).

        Raises BrokerError if the wait failed; messages may be ready then, so the
        caller reserves next, as after a True.
        """

    @abc.abstractmethod
    def cancel(self) -> None:
        """Abandon the wait; its connection is closed. A watch asked to reserve ends
        instead, keeping what it leased for :meth:`taken`."""

    def taken(self) -> Taken | None:
        """After the wait ended: the messages leased for the caller in the same round
        trip, when it asked for a reserve and the broker ran one; else None (the
        caller reserves itself)."""
        return None


@runtime_checkable
class ReadyWatching(Protocol):
    """A broker that can wait for ready messages without blocking its caller."""

    def watch_ready(
        self, queues: Sequence[str], timeout_s: float, *, limit: int = 0, owner: str = ""
    ) -> ReadyWatch | None:
        """Start waiting until a message may be deliverable in ``queues``, the next
        scheduled or leased one falls due, or ``timeout_s`` passes. None when one may
        be deliverable now (reserve at once). With ``limit``, the wait may end by
        reserving up to that many for ``owner`` (see :meth:`ReadyWatch.taken`).
        Raises BrokerError if the broker fails."""
        ...  # pragma: no cover - a protocol
