"""The msgpack codec: the json tags with native bytes, smaller and faster (optional)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from corral.errors import ConfigError, DecodeError, EncodeError
from corral.serializers.plain import is_plain_msgpack, is_plain_msgpack_call
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
            if is_plain_msgpack(value):
                return self._pack(value)
        except RecursionError:  # a cycle or very deep nesting: the tagger says which
            pass
        except OverflowError:  # an int beyond 64 bits: the tagger writes it in hex
            pass
        return self._pack(self._tagger().tag_value(value))

    def encode_call(self, task: str, args: list[Any], kwargs: dict[str, Any]) -> bytes:
        """Encode the task call ``[task, args, kwargs]`` as :meth:`encode` would."""
        call = [task, args, kwargs]
        try:
            if type(task) is str and is_plain_msgpack_call(args, kwargs):
                return self._pack(call)
        except (RecursionError, OverflowError):  # as in encode()
            pass
        return self._pack(self._tagger().tag_value(call))

    def encode_calls(
        self, task: str, calls: Sequence[tuple[list[Any], dict[str, Any]]]
    ) -> list[bytes]:
        """Encode many calls ``(args, kwargs)`` of ``task``, one by one."""
        return [self.encode_call(task, args, kwargs) for args, kwargs in calls]

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
