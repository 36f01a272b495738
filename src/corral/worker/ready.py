"""How the worker's loop learns that messages may be ready: a watch or a thread.

Both kinds wake the loop through its selector (key data ``"waiter"``):

- :class:`WatchWaiter`, for brokers that can start a wait without blocking
  (:class:`~corral.brokers.watch.ReadyWatching`, Redis): the loop selects on the
  wait's own socket and reserves as soon as the broker answers, with no thread
  between the broker and the loop; the broker may even reserve as the wait
  ends, in the same round trip (:meth:`WatchWaiter.take`).
- :class:`ThreadWaiter`, for the others (SQLite): a thread blocks in
  ``broker.wait_ready`` on a broker of its own and writes to a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import time
from collections.abc import Sequence

from corral.app import Corral
from corral.brokers.watch import ReadyWatch, ReadyWatching, Taken
from corral.errors import BrokerError

__all__ = ["ThreadWaiter", "WatchWaiter", "make_waiter"]

log = logging.getLogger("corral.worker")

WAIT_SLICE_S = 1.0
"""The longest wait before the loop looks again (due times end it sooner)."""
_KEY = "waiter"


class WatchWaiter:
    """Waits through the broker's watch: the loop selects on the broker's socket."""

    def __init__(self, broker: ReadyWatching, queues: Sequence[str]) -> None:
        self._broker = broker
        self._queues = tuple(queues)
        self._watch: ReadyWatch | None = None
        self._taken: Taken | None = None
        self._watched_fd = -1
        self._selector: selectors.BaseSelector | None = None
        # Readable when a message may be ready now: the loop looks without a wait.
        self._now_read, self._now_write = os.pipe()
        os.set_blocking(self._now_read, False)

    def register(self, selector: selectors.BaseSelector) -> None:
        """Let ``selector`` wake the loop for this waiter."""
        self._selector = selector
        selector.register(self._now_read, selectors.EVENT_READ, _KEY)

    def start(self) -> None:
        """Nothing to start: waits begin with :meth:`request`."""

    def request(self, *, limit: int = 0, owner: str = "") -> None:
        """Ask for one wake-up when messages may be ready; with ``limit``, have the
        broker reserve up to that many for ``owner`` as the wait ends."""
        if self._watch is not None or self._selector is None:
            return
        try:
            watch = self._broker.watch_ready(self._queues, WAIT_SLICE_S, limit=limit, owner=owner)
        except BrokerError as error:
            # Unreachable for connect_timeout_s already: the loop's next reserve
            # retries (and blocks) as long again, so no pause is added here.
            log.warning("waiting for messages failed: %s", error)
            watch = None
        if watch is None:
            os.write(self._now_write, b"!")
            return
        self._watch = watch
        self._watched_fd = watch.fileno()
        self._selector.register(self._watched_fd, selectors.EVENT_READ, _KEY)

    def on_event(self) -> bool:
        """Consume a wake-up: True when messages may be ready (the loop reserves),
        False when the wait goes on."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._now_read, 512)
        watch = self._watch
        if watch is None:
            return True
        try:
            if not watch.finish():
                self._rewatch(watch)
                return False
        except BrokerError as error:
            # The next reserve reports a real outage; this one only ends the wait.
            log.debug("the wait for messages ended with an error: %s", error)
        self._taken = watch.taken()
        self._end_watch()
        return True

    def take(self) -> Taken | None:
        """What the ended wait reserved (once); None when it reserved nothing itself."""
        taken, self._taken = self._taken, None
        return taken

    def cancel(self) -> None:
        """End a wait in progress; what it reserved stays for :meth:`take`."""
        watch = self._end_watch()
        if watch is not None:
            watch.cancel()
            self._taken = watch.taken()

    def stop(self) -> None:
        """End a wait in progress (see :meth:`cancel`) and close the look-now pipe."""
        self.cancel()
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._now_read)
        os.close(self._now_read)
        os.close(self._now_write)

    def _rewatch(self, watch: ReadyWatch) -> None:
        """The wait goes on, perhaps on another descriptor."""
        if self._selector is not None and self._watched_fd != watch.fileno():
            self._selector.unregister(self._watched_fd)
            self._watched_fd = watch.fileno()
            self._selector.register(self._watched_fd, selectors.EVENT_READ, _KEY)

    def _end_watch(self) -> ReadyWatch | None:
        watch, self._watch = self._watch, None
        if watch is not None and self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._watched_fd)
        return watch


class ThreadWaiter:
    """A thread that blocks on ``broker.wait_ready`` and wakes the loop through a pipe."""

    def __init__(self, app: Corral, queues: Sequence[str]) -> None:
        self._url = app.broker_url
        self._queues = tuple(queues)
        self._wanted = threading.Event()
        self._stopped = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._thread = threading.Thread(target=self._run, name="corral-ready-waiter", daemon=True)

    def register(self, selector: selectors.BaseSelector) -> None:
        """Let ``selector`` wake the loop for this waiter."""
        selector.register(self._read_fd, selectors.EVENT_READ, _KEY)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def request(self, *, limit: int = 0, owner: str = "") -> None:
        """Ask for one wake-up when messages may be ready (the thread reserves nothing:
        ``limit`` and ``owner`` are not used)."""
        self._wanted.set()

    def take(self) -> Taken | None:
        """Nothing: this waiter never reserves."""
        return None

    def cancel(self) -> None:
        """Nothing to end early: the thread's wait reserves nothing and ends by itself."""

    def on_event(self) -> bool:
        """Consume wake-up bytes: messages may be ready (True)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 512)
        return True

    def stop(self) -> None:
        """Stop the thread (it notices within one wait)."""
        self._stopped = True
        self._wanted.set()
        if self._thread.ident is not None:  # never started: the broker was never reached
            self._thread.join(timeout=3.0)

    def _run(self) -> None:
        from corral.brokers import broker_from_url

        broker = broker_from_url(self._url)
        try:
            while not self._stopped:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopped:
                    break
                try:
                    broker.wait_ready(self._queues, WAIT_SLICE_S)
                except BrokerError as error:
                    log.warning("waiting for messages failed: %s", error)
                    time.sleep(WAIT_SLICE_S)
                os.write(self._write_fd, b"!")
        finally:
            broker.close()


def make_waiter(app: Corral, queues: Sequence[str]) -> WatchWaiter | ThreadWaiter:
    """A watch when the app's broker can start a wait without blocking, else a thread."""
    if isinstance(app.broker, ReadyWatching):
        return WatchWaiter(app.broker, queues)
    return ThreadWaiter(app, queues)
