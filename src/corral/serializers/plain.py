"""The fast path: is a value already native to the codec, with nothing to tag?

The hot path (every send, every task) is values that need no tags: a walk that
only checks exact types says so, and the original object goes straight to the
C encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.serializers.tags import NATIVE, TAG

__all__ = ["is_plain_json", "is_plain_json_call", "is_plain_msgpack", "is_plain_msgpack_call"]


def _plain_walker(scalars: frozenset[type]) -> Callable[[Any], bool]:
    """Build a check that a value holds only ``scalars``, lists and str-keyed dicts.

    Exact types only: a subclass must go the slow way, where it is refused.
    """

    def is_plain(value: Any) -> bool:
        # Scalars are checked inline, not by a call: calls are what this walk costs.
        kind = type(value)
        if kind is list:
            for item in value:  # noqa: SIM110 - all(<generator>) is slower on this hot path
                if type(item) not in scalars and not is_plain(item):
                    return False
            return True
        if kind is dict:
            if TAG in value:
                return False
            for key, item in value.items():
                if type(key) is not str or (type(item) not in scalars and not is_plain(item)):
                    return False
            return True
        return kind in scalars

    return is_plain


is_plain_json = _plain_walker(NATIVE)
"""True if json can take the value as it is; may raise RecursionError on a cycle."""

is_plain_msgpack = _plain_walker(NATIVE | {bytes})
"""True if msgpack can take the value as it is; may raise RecursionError on a cycle."""


def _call_check(
    scalars: frozenset[type], is_plain: Callable[[Any], bool]
) -> Callable[[list[Any], dict[str, Any]], bool]:
    """Build a check that a call's ``args`` (a list) and ``kwargs`` (a dict) are plain."""
    holds_scalars = scalars.issuperset

    def is_plain_call(args: list[Any], kwargs: dict[str, Any]) -> bool:
        # The usual call, scalar arguments and no keywords, is checked in C: the walk's
        # three calls (the call, its args, its kwargs) cost as much as encoding it.
        return (holds_scalars(map(type, args)) or is_plain(args)) and (
            not kwargs or is_plain(kwargs)
        )

    return is_plain_call


is_plain_json_call = _call_check(NATIVE, is_plain_json)
"""True if json can take ``[task, args, kwargs]`` as it is (``task`` being a str)."""

is_plain_msgpack_call = _call_check(NATIVE | {bytes}, is_plain_msgpack)
"""True if msgpack can take ``[task, args, kwargs]`` as it is (``task`` being a str)."""
