"""Contract: several real processes share one broker store safely."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from corral.brokers.base import Broker
from corral.results import TaskState
from tests.brokers.builders import envelope, send_ids

# Waits for "go" on stdin so every consumer starts at once, then reserves and
# settles in small batches until the queue stays empty; prints the ids it got.
_CONSUMER = """
import json, sys
from corral.brokers import broker_from_url
from corral.brokers.base import Settlement
from corral.results import TaskState

broker = broker_from_url(sys.argv[1])
sys.stdin.readline()
got, empty = [], 0
while empty < 3:
    batch = broker.reserve(["default"], 5, owner=sys.argv[2])
    empty = 0 if batch else empty + 1
    got += [d.id for d in batch]
    broker.settle([Settlement(d.id, d.token, TaskState.SUCCEEDED, b"ok") for d in batch])
print(json.dumps(got))
"""


@pytest.fixture
def consumers(broker: Broker) -> Iterator[list[subprocess.Popen[str]]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONSUMER, broker.url, f"proc-{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


@pytest.mark.timeout(60)
def test_concurrent_consumers_never_share_a_message(
    broker: Broker, consumers: list[subprocess.Popen[str]]
) -> None:
    ids = [f"m{i:04}" for i in range(600)]
    send_ids(broker, ids, lease_s=300.0)
    for proc in consumers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    seen: list[str] = []
    for proc in consumers:
        out, _ = proc.communicate(timeout=50)
        assert proc.returncode == 0
        seen += json.loads(out)
    assert len(seen) == len(set(seen)), "a message was delivered to two processes"
    assert sorted(seen) == ids
    assert all(broker.state(task_id) is TaskState.SUCCEEDED for task_id in ids[::50])


def test_many_threads_sending_at_once(open_broker: Callable[[], Broker]) -> None:
    """A threaded web app calls delay() from every request thread on one app/broker."""
    import threading

    broker = open_broker()
    errors: list[BaseException] = []

    def send_some(thread: int) -> None:
        try:
            for i in range(100):
                broker.send([envelope(f"t{thread}-{i}")])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send_some, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(q.ready for q in broker.queue_stats()) == 800
