"""A gevent client: COUNT greenlets each send a task and wait for its result (seeds/004).

``python -m tests.redis_worker.gevent_client URL COUNT`` monkey-patches first, then
runs the greenlets concurrently and prints one JSON line: how many got their own
result back, and the first errors. Celery's per-task pub/sub result waiting broke
under gevent; corral's waits are plain blocking commands on patched sockets.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402 - after monkey-patching, as gevent requires
import sys  # noqa: E402

import gevent  # noqa: E402

from tests.apps.redis_app import make_app  # noqa: E402

WAIT_S = 10.0


def main(url: str, count: int) -> None:
    app = make_app(url)

    def one(n: int) -> object:
        return app.send("rapp.noop", n).get(timeout_s=WAIT_S)

    jobs = [gevent.spawn(one, n) for n in range(count)]
    gevent.joinall(jobs, timeout=WAIT_S * 6)
    ok = sum(1 for n, job in enumerate(jobs) if job.successful() and job.value == n)
    errors = [repr(job.exception) for job in jobs if job.exception is not None]
    print(json.dumps({"count": count, "ok": ok, "errors": errors[:5]}))
    app.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
