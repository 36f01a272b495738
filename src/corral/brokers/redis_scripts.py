"""The Lua scripts of the Redis broker, loaded once per server and called by SHA.

Each script in ``lua/`` is sent with ``lua/common.lua`` prepended (key layout,
server clock, shared steps). Calls go out as ``EVALSHA``; a server that does
not know the script (first call, or a restarted or flushed Redis) answers
``NOSCRIPT`` and the same call is repeated once as ``EVAL``, which also caches
the script for the next ``EVALSHA``.

Sending without a countdown runs no script at all: it is one ``RPUSH`` of
packed envelopes onto the inbox, which every other script accepts first
(``ingest`` in ``common.lua``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.connection import Connection
from redis.exceptions import NoScriptError, ResponseError

from corral.brokers.redis_connection import command

__all__ = ["Script", "load_scripts"]

AGAIN = "CORRAL_AGAIN"

SCRIPT_NAMES = (
    "cleanup",
    "dead_letters",
    "extend",
    "heartbeat",
    "purge",
    "purge_dead",
    "queue_stats",
    "register_worker",
    "requeue_dead",
    "reserve",
    "revoke",
    "send",
    "settle",
    "state",
    "wait_bound",
    "workers",
)


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its full source and the SHA1 Redis knows it by."""

    name: str
    source: str
    sha: str

    def run(self, connection: Connection, args: list[Any]) -> Any:
        """Run the script with no KEYS and ``args`` as ARGV (the prefix first).

        A script that must see every sent message answers ``CORRAL_AGAIN`` while
        the inbox still holds a backlog after one batch: it is called again.
        """
        while True:
            try:
                return self._run_once(connection, args)
            except ResponseError as exc:
                if str(exc) != AGAIN:
                    raise

    def _run_once(self, connection: Connection, args: list[Any]) -> Any:
        try:
            return command(connection, "EVALSHA", self.sha, 0, *args)
        except NoScriptError:
            return command(connection, "EVAL", self.source, 0, *args)


def load_scripts() -> dict[str, Script]:
    """Every script, by name, read from the package's ``lua/`` directory."""
    folder = resources.files("corral.brokers").joinpath("lua")
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    scripts = {}
    for name in SCRIPT_NAMES:
        body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
        source = f"{common}\n{body}"
        sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        scripts[name] = Script(name, source, sha)
    return scripts
