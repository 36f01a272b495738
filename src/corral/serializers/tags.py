"""Tags: the wire format's marks for what json and msgpack lack, and reading them back.

A tagged value is the map ``{"~t": <tag>, "v": <payload>}``. The tagging walk
that writes them is in :mod:`corral.serializers.tagger`; :func:`untag` reads them.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import uuid
from collections.abc import Callable
from typing import Any

from corral.errors import DecodeError

__all__ = ["NATIVE", "SCALAR_TAGS", "SEQUENCES", "TAG", "VALUE", "b64", "tagged", "untag"]

TAG = "~t"
"""The key that marks a map as a tagged value."""

VALUE = "v"
"""The key of a tagged value's payload."""

NATIVE: frozenset[type] = frozenset({str, int, float, bool, type(None)})
"""Scalars that json and msgpack carry as they are (ints within the codec's bounds)."""

SCALAR_TAGS: dict[type, tuple[str, Callable[[Any], str]]] = {
    datetime.datetime: ("datetime", datetime.datetime.isoformat),
    datetime.date: ("date", datetime.date.isoformat),
    uuid.UUID: ("uuid", str),
    decimal.Decimal: ("decimal", str),
}
"""Each tagged scalar type: its tag and how its payload is written."""

SEQUENCES = frozenset({tuple, set, frozenset})
"""Containers sent as a list tagged with the type's name."""


def tagged(tag: str, payload: object) -> dict[str, object]:
    """The tagged map for ``payload``."""
    return {TAG: tag, VALUE: payload}


def b64(data: bytes) -> str:
    """``data`` as base64 text: the payload of a ``bytes`` tag."""
    return base64.b64encode(data).decode("ascii")


def _str(payload: object) -> str:
    if type(payload) is not str:
        raise TypeError(f"expected a str payload, got {type(payload).__name__}")
    return payload


def _list(payload: object) -> list[Any]:
    if type(payload) is not list:
        raise TypeError(f"expected a list payload, got {type(payload).__name__}")
    return payload


def _datetime(payload: object) -> datetime.datetime:
    text = _str(payload)
    value = datetime.datetime.fromisoformat(text)
    if (
        value.utcoffset() == datetime.timedelta(0)
        and text[-16:-15] in ("+", "-")
        and text[-7:-6] == "."
    ):
        # CPython 3.11 reads an offset under one second ("+00:00:00.000001") as UTC.
        sign = -1 if text[-16] == "-" else 1
        offset = datetime.timedelta(microseconds=sign * int(text[-6:]))
        value = value.replace(tzinfo=datetime.timezone(offset))
    return value


_UNTAGGERS: dict[str, Callable[[Any], object]] = {
    "bytes": lambda p: base64.b64decode(_str(p), validate=True),
    "int": lambda p: int(_str(p), 16),
    "datetime": _datetime,
    "date": lambda p: datetime.date.fromisoformat(_str(p)),
    "uuid": lambda p: uuid.UUID(_str(p)),
    "decimal": lambda p: decimal.Decimal(_str(p)),
    "tuple": lambda p: tuple(_list(p)),
    "set": lambda p: set(_list(p)),
    "frozenset": lambda p: frozenset(_list(p)),
    "dict": lambda p: dict(_list(p)),
}


def untag(obj: dict[str, Any]) -> Any:
    """Object hook: turn a tagged map back into its value; leave other maps alone."""
    if TAG not in obj:
        return obj
    tag = obj[TAG]
    untagger = _UNTAGGERS.get(tag) if type(tag) is str else None
    if untagger is None:
        raise DecodeError(
            f"unknown tag {tag!r}: the message was written by a newer corral "
            f"or by something else; known tags: {', '.join(_UNTAGGERS)}"
        )
    if len(obj) != 2 or VALUE not in obj:
        raise DecodeError(
            f"malformed {tag!r} tag {obj!r:.80}: expected exactly the keys {TAG!r} and {VALUE!r}"
        )
    try:
        return untagger(obj[VALUE])
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise DecodeError(f"malformed {tag!r} tag {obj!r:.80}: {exc}") from None
