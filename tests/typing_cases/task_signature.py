"""Checked by mypy --strict in tests/test_typing.py, never run.

A line that must be an error ends in ``# E: <text mypy reports>``; every other
line must check cleanly.
"""

from __future__ import annotations

from typing import assert_type

from corral import Corral, ResultHandle, TaskState

app = Corral("sqlite:///typing.db")


@app.task(queue="default", priority=0, retries=3, timeout_s=None, lease_s=30)
def add(x: int, y: int) -> int:
    return x + y


@app.task
def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


# -- what must check -------------------------------------------------------------------
assert_type(add(1, 2), int)
assert_type(add.delay(1, 2), ResultHandle[int])
assert_type(add.delay(x=1, y=2).get(timeout_s=10), int)
sent = add.send(args=(1, 2), kwargs={}, countdown_s=5, priority=9, queue="high", task_id=None)
assert_type(sent, ResultHandle[int])
assert_type(add.send_many([((1, 2), {}), ((3, 4), {})]), list[ResultHandle[int]])
assert_type(add.delay(1, 2).status(), TaskState)
assert_type(add.delay(1, 2).ready(), bool)
assert_type(add.delay(1, 2).revoke(), bool)
assert_type(greet.delay("ann", punctuation="?").get(), str)
assert_type(app.send("module.add", 1, 2).id, str)

# -- what must not ---------------------------------------------------------------------
add.delay("x")  # E: Argument 1 to "delay" of "Task" has incompatible type "str"
add.delay("x", 2)  # E: Argument 1 to "delay" of "Task" has incompatible type "str"
add.delay(1)  # E: Missing positional argument "y" in call to "delay" of "Task"
add.delay(1, 2, 3)  # E: Too many arguments for "delay" of "Task"
add.delay(1, z=2)  # E: Unexpected keyword argument "z" for "delay" of "Task"
add("x", 2)  # E: Argument 1 to "__call__" of "Task" has incompatible type "str"
greet.delay("ann", "?")  # E: Too many positional arguments for "delay" of "Task"
text: str = add.delay(1, 2).get()  # E: Incompatible types in assignment
add.send((1, 2))  # E: Too many positional arguments for "send" of "Task"
add.delay(1, 2).get(10)  # E: Too many positional arguments for "get" of "ResultHandle"


@app.task(retrys=3)  # E: Unexpected keyword argument "retrys"
def typo() -> None: ...


@app.task(priority="high")  # E: No overload variant of "task" of "Corral" matches
def bad_priority() -> None: ...
