"""The pickle codec: any picklable object, only for apps whose every writer is trusted."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from corral.errors import DecodeError, EncodeError
from corral.serializers.sniff import looks_like_pickle, undecodable

__all__ = ["PickleCodec"]

_PICKLE_PROTOCOL = 5  # readable by every Python corral supports (3.8+)


class PickleCodec:
    """pickle: any picklable object. Used only when the app names it.

    .. warning:: Unpickling runs arbitrary code chosen by whoever wrote the message.
       Anyone who can write to the broker (or to the result store) can then run
       code in every worker and client that decodes with this codec. Use it only
       when every writer is trusted; the json and msgpack codecs never unpickle.
    """

    name: str = "pickle"

    def encode(self, value: object) -> bytes:
        """Pickle ``value`` (protocol 5); raise EncodeError if it cannot be pickled."""
        try:
            return pickle.dumps(value, protocol=_PICKLE_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            type_name = type(value).__name__
            raise EncodeError(
                f"value cannot be pickled: {exc}; pass a picklable value "
                "(module-level classes and functions, no open resources)",
                type_name=type_name,
            ) from None

    def encode_call(self, task: str, args: list[Any], kwargs: dict[str, Any]) -> bytes:
        """Pickle the task call ``[task, args, kwargs]``."""
        return self.encode([task, args, kwargs])

    def encode_calls(
        self, task: str, calls: Sequence[tuple[list[Any], dict[str, Any]]]
    ) -> list[bytes]:
        """Encode many calls ``(args, kwargs)`` of ``task``, one by one."""
        return [self.encode_call(task, args, kwargs) for args, kwargs in calls]

    def decode(self, data: bytes) -> Any:
        """Unpickle ``data``: runs whatever code the writer put in it (see the class docs)."""
        if not looks_like_pickle(data):
            raise undecodable(data, self.name, "no pickle protocol 2+ header")
        try:
            return pickle.loads(data)
        except Exception as exc:  # unpickling can fail with anything its objects raise
            raise DecodeError(f"cannot unpickle {len(data)} bytes: {exc!r}") from exc
