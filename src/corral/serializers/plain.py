"""The fast path: is a value already native to the codec, with nothing to tag?

The hot path (every send, every task) is values that need no tags: a walk that
only checks exact types says so, and the original object goes straight to the
C encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.serializers.tags import NATIVE, TAG

__all__ = ["is_plain_json", "is_plain_msgpack"]


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
