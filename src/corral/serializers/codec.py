"""The codec protocol: what every codec offers the app, the worker and the results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Codec"]


class Codec(Protocol):
    """Turns a value into bytes and back. Instances are stateless and thread-safe."""

    name: str

    def encode(self, value: object) -> bytes:
        """Encode ``value``; raise :class:`~corral.errors.EncodeError` if it cannot be."""
        ...

    def encode_call(self, task: str, args: list[Any], kwargs: dict[str, Any]) -> bytes:
        """Encode the task call ``[task, args, kwargs]``: what :meth:`encode` makes of it,
        sooner (every send encodes one)."""
        ...

    def encode_calls(
        self, task: str, calls: Sequence[tuple[list[Any], dict[str, Any]]]
    ) -> list[bytes]:
        """Encode many calls ``(args, kwargs)`` of ``task``: :meth:`encode_call` of each."""
        ...

    def decode(self, data: bytes) -> Any:
        """Decode ``data``; raise :class:`~corral.errors.DecodeError` if it cannot be."""
        ...
