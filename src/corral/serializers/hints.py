"""Hints: what to pass instead of a value that no codec may carry."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import uuid
from collections.abc import Callable, ItemsView, Iterator, KeysView, ValuesView

from corral.serializers.tags import SCALAR_TAGS

__all__ = ["hint"]

_SUPPORTED = (
    "None, bool, int, float, str, bytes, list, tuple, set, frozenset, dict, "
    "datetime.datetime, datetime.date, uuid.UUID and decimal.Decimal"
)


def _isa(*kinds: type) -> Callable[[object], bool]:
    return lambda obj: isinstance(obj, kinds)


def _is_dataclass_instance(obj: object) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


# Checked in order: an IntEnum is also an int, a namedtuple also a tuple.
_HINTS: tuple[tuple[Callable[[object], bool], str], ...] = (
    (_isa(enum.Enum), "pass its .value"),
    (_is_dataclass_instance, "pass dataclasses.asdict(value)"),
    (_isa(os.PathLike), "pass str(path)"),
    (_isa(datetime.time), "pass value.isoformat()"),
    (_isa(datetime.timedelta), "pass value.total_seconds()"),
    (_isa(bytearray, memoryview), "pass bytes(value)"),
    (
        lambda obj: isinstance(obj, tuple) and hasattr(obj, "_fields"),
        "pass value._asdict() or tuple(value)",
    ),
    (_isa(Iterator, range, KeysView, ValuesView, ItemsView), "pass list(value)"),
    (lambda obj: callable(getattr(obj, "tolist", None)), "pass value.tolist()"),
)
_BASES = (bool, int, float, str, bytes, list, tuple, set, frozenset, dict, *SCALAR_TAGS)
_CONVERSIONS = {  # how to make a plain instance of a base, where ``base(value)`` does not
    datetime.datetime: "datetime.datetime.fromisoformat(value.isoformat())",
    datetime.date: "datetime.date.fromisoformat(value.isoformat())",
    uuid.UUID: "uuid.UUID(str(value))",
}


def hint(obj: object) -> str:
    """What to pass instead of ``obj``, which no codec may carry: ``"pass str(path)"``."""
    for applies, text in _HINTS:
        if applies(obj):
            return text
    for base in _BASES:
        if isinstance(obj, base):
            name = base.__name__
            plain = _CONVERSIONS.get(base, f"{name}(value)")
            return f"it is a subclass of {name} and would come back as a plain {name}; pass {plain}"
    return f"pass one of the supported types: {_SUPPORTED}"
