"""The msgpack codec: the json tags with native bytes, smaller and faster (optional)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.errors import ConfigError, DecodeError, EncodeError
from corral.serializers.plain import is_plain_msgpack
from corral.serializers.sniff import optional_msgpack, undecodable
from corral.serializers.tagger import Tagger
from corral.serializers.tags import untag

__all__ = ["MsgpackCodec"]

_MSGPACK_TAG_MARK = b"\xa2~t"  # "~t" as a msgpack fixstr


class MsgpackCodec:
    """msgpack with the same tags as json (bytes are native): smaller and faster.

    Needs the optional dependency: ``pip install 'corral[msgpack]'``.
    """

    name: str = "msgpack"

    def __init__(self) -> None:
        msgpack = optional_msgpack()
        if msgpack is None:
            raise ConfigError(
                "codec 'msgpack' needs the msgpack package; pip install 'corral[msgpack]'"
            )
        self._packb: Callable[..., bytes] = msgpack.packb
        self._unpackb: Callable[..., Any] = msgpack.unpackb
        self._unpack_errors = (ValueError, TypeError, RecursionError, msgpack.UnpackException)

    def encode(self, value: object) -> bytes:
        """Encode ``value`` as msgpack; raise EncodeError for unsupported values."""
        try:
            plain = is_plain_msgpack(value)
        except RecursionError:
            plain = False
        if plain:
            try:
                return self._pack(value)
            except OverflowError:
                pass  # an int beyond 64 bits: the tagger writes it in hex
        return self._pack(self._tagger().tag_value(value))

    def decode(self, data: bytes) -> Any:
        """Decode msgpack written by :meth:`encode`; raise DecodeError for anything else."""
        hook = untag if _MSGPACK_TAG_MARK in data else None
        try:
            return self._unpackb(
                data, object_hook=hook, raw=False, ext_hook=_no_ext, unicode_errors="surrogatepass"
            )
        except self._unpack_errors as exc:
            raise undecodable(data, self.name, exc) from None

    def _pack(self, value: object) -> bytes:
        try:
            return self._packb(value, use_bin_type=True, unicode_errors="surrogatepass")
        except ValueError as exc:  # nested deeper than msgpack's limit, or an object too large
            raise EncodeError(f"value cannot be encoded by the msgpack codec: {exc}") from None

    def _tagger(self) -> Tagger:
        return Tagger(self.name, bytes_native=True, int_bounds=(-(2**63), 2**64 - 1))


def _no_ext(code: int, data: bytes) -> object:
    raise DecodeError(
        f"msgpack extension type {code} is not a corral type; "
        "the message was not written by corral's msgpack codec"
    )
