"""The Redis broker's options: :class:`RedisOptions` is their one declaration.

The constructor's keyword arguments, ``from_url``'s query options and the error
that lists the valid ones all come from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from corral.errors import ConfigError

__all__ = ["RedisOptions", "split_url_options", "with_url_options"]


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Every option of the Redis broker.

    ``connect_timeout_s`` bounds how long an operation keeps retrying an
    unreachable server before raising BrokerUnavailable. ``socket_timeout_s``
    bounds one reply; blocking waits are cut into slices shorter than it.
    ``max_connections`` caps the pool (None: no cap; each thread or greenlet
    blocked in a wait holds one connection). ``worker_expiry_s`` is how long a
    worker may stay silent before :meth:`cleanup` removes it. The ``tls_*``
    options apply to ``rediss://`` URLs.
    """

    key_prefix: str = "corral"
    connect_timeout_s: float = 5.0
    socket_timeout_s: float = 5.0
    max_connections: int | None = None
    worker_expiry_s: float = 300.0
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_check_hostname: bool = True

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> RedisOptions:
        """Options from keyword arguments; unknown names raise ConfigError listing valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(
                f"RedisBroker: unknown option(s) {', '.join(map(repr, unknown))}; "
                f"valid options are {', '.join(valid)}"
            )
        made = cls(**options)
        made.validate()
        return made

    def validate(self) -> None:
        """Raise ConfigError naming the first option with an impossible value."""
        for name in ("connect_timeout_s", "socket_timeout_s", "worker_expiry_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"RedisBroker: {name} must be > 0, got {getattr(self, name)!r}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ConfigError(
                f"RedisBroker: max_connections must be >= 1 or None, got {self.max_connections!r}"
            )
        if not self.key_prefix or ":" in self.key_prefix:
            raise ConfigError(
                f"RedisBroker: key_prefix must be a non-empty name without ':', "
                f"got {self.key_prefix!r}"
            )

    @property
    def attempt_connect_s(self) -> float:
        """The connect timeout of one attempt: short enough to retry within the budget."""
        return min(self.connect_timeout_s / 2, 1.0)

    @property
    def block_slice_s(self) -> float:
        """The longest single blocking command: it must return before the socket times out."""
        if self.socket_timeout_s > 2.0:
            return self.socket_timeout_s - 1.0
        return self.socket_timeout_s / 2


def split_url_options(url: str) -> tuple[str, dict[str, Any]]:
    """The URL without corral's query options, and those options converted.

    ``redis://host/0?key_prefix=app&connect_timeout_s=2`` gives
    ``("redis://host/0", {"key_prefix": "app", "connect_timeout_s": 2.0})``; other
    query parameters (redis-py's own, like ``ssl_cert_reqs``) stay in the URL.
    """
    parts = urlsplit(url)
    ours: dict[str, Any] = {}
    theirs = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OPTION_TYPES:
            ours[name] = _converted(name, value)
        else:
            theirs.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def with_url_options(url: str, options: Mapping[str, Any]) -> str:
    """``url`` with ``options`` added to its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [
        (name, str(value)) for name, value in options.items()
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _converted(name: str, text: str) -> Any:
    kind = _OPTION_TYPES[name]
    try:
        if kind == "bool":
            return {"1": True, "true": True, "yes": True, "0": False, "false": False,
                    "no": False}[text.lower()]  # fmt: skip
        if kind == "int | None":
            return None if text.lower() in ("", "none") else int(text)
        if kind == "float":
            return float(text)
    except (KeyError, ValueError):
        raise ConfigError(
            f"RedisBroker: URL option {name}={text!r} is not a valid {kind}"
        ) from None
    return text or None if kind == "str | None" else text


_OPTION_TYPES = {f.name: str(f.type) for f in dataclasses.fields(RedisOptions)}
