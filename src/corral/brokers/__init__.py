"""Brokers: where messages wait, leases are held and results are kept.

:func:`broker_from_url` picks the broker for a URL:

- ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db``: the
  embedded :class:`~corral.brokers.sqlite.SqliteBroker`;
- ``redis://`` and ``rediss://``: ``corral.brokers.redis.RedisBroker`` (imported
  only for those URLs, so SQLite users do not need redis-py).
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from corral.brokers.base import Broker
from corral.brokers.sqlite import SqliteBroker
from corral.errors import ConfigError

__all__ = ["SUPPORTED_SCHEMES", "Broker", "broker_from_url"]

SUPPORTED_SCHEMES = ("sqlite", "redis", "rediss")

_SQLITE_PREFIX = "sqlite:///"
_SQLITE_OPTIONS = ("busy_timeout_s", "clock", "worker_expiry_s")


def broker_from_url(url: str, **options: Any) -> Broker:
    """Open the broker that ``url`` names; ``options`` go to its constructor.

    Raises :class:`~corral.errors.ConfigError` for an unknown scheme, a
    malformed URL or an option the broker does not take.
    """
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"broker URL {url!r} has an unknown scheme; use one of "
            + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
            + " (e.g. sqlite:///corral.db or redis://localhost:6379/0)"
        )
    if scheme == "sqlite":
        return _sqlite_from_url(url, options)
    module = importlib.import_module("corral.brokers.redis")
    return cast(Broker, module.RedisBroker.from_url(url, **options))


def _sqlite_from_url(url: str, options: dict[str, Any]) -> Broker:
    path = url.removeprefix(_SQLITE_PREFIX) if url.startswith(_SQLITE_PREFIX) else ""
    if not path or path.endswith("/"):
        raise ConfigError(
            f"broker URL {url!r} names no database file; write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    unknown = sorted(set(options) - set(_SQLITE_OPTIONS))
    if unknown:
        raise ConfigError(
            f"broker URL {url!r}: unknown option(s) {', '.join(unknown)} for the SQLite "
            f"broker; valid options: {', '.join(_SQLITE_OPTIONS)}"
        )
    return SqliteBroker(path, **options)
