"""Task ids: 32 hex digits, time-ordered, unique across threads and forks."""

from __future__ import annotations

import os
import string
import threading
import time

from corral.ids import _POOL, new_task_id, new_task_ids


def is_id(text: str) -> bool:
    return len(text) == 32 and set(text) <= set(string.hexdigits.lower())


def test_ids_are_32_hex_digits_led_by_the_time_in_milliseconds() -> None:
    before_ms = time.time_ns() // 1_000_000
    one, many = new_task_id(), new_task_ids(3)
    after_ms = time.time_ns() // 1_000_000
    assert all(is_id(task_id) for task_id in (one, *many))
    assert all(before_ms <= int(task_id[:12], 16) <= after_ms for task_id in (one, *many))


def test_later_ids_sort_after_earlier_ones() -> None:
    first = new_task_id()
    time.sleep(0.002)
    second = new_task_id()
    time.sleep(0.002)
    assert first < second < new_task_ids(1)[0]


def test_a_batch_of_ids_shares_the_time_and_nothing_else() -> None:
    ids = new_task_ids(10_000)
    assert len(set(ids)) == 10_000
    assert len({task_id[:12] for task_id in ids}) == 1
    assert new_task_ids(0) == []


def test_threads_never_get_the_same_id() -> None:
    made: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        into.extend(new_task_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [task_id for into in made for task_id in into]
    assert len(set(every)) == len(every) == 40_000


def test_a_forked_child_never_reuses_the_parents_random_bits() -> None:
    new_task_id()  # the pool now holds random parts the child inherits
    parent_next = next(_POOL.parts)  # what a child without the fork hook would use next
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, never back into pytest
        try:
            emptied = next(_POOL.parts, None) is None
            os.write(write_fd, f"{emptied} {new_task_id()}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        emptied, child_id = pipe.read().split()
    os.waitpid(pid, 0)
    assert emptied == "True"
    assert is_id(child_id)
    assert child_id[12:] != parent_next
    assert next(_POOL.parts, None) is not None  # the parent's own pool is untouched
