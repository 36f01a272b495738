"""The codec protocol: what every codec offers the app, the worker and the results."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Codec"]


class Codec(Protocol):
    """Turns a value into bytes and back. Instances are stateless and thread-safe."""

    name: str

    def encode(self, value: object) -> bytes:
        """Encode ``value``; raise :class:`~corral.errors.EncodeError` if it cannot be."""
        ...

    def decode(self, data: bytes) -> Any:
        """Decode ``data``; raise :class:`~corral.errors.DecodeError` if it cannot be."""
        ...
