"""Sniffing: recognising pickle, json and msgpack bytes, for errors that say what was sent.

Only inspects and parses: pickle data is recognised by its header and never unpickled.
"""

from __future__ import annotations

import importlib
import json
from types import ModuleType

from corral.errors import DecodeError

__all__ = ["looks_like_pickle", "optional_msgpack", "sniff_codec", "undecodable"]

_JSON_DECODER = json.JSONDecoder()
_MSGPACK_CONTAINER_STARTS = frozenset([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])


def optional_msgpack() -> ModuleType | None:
    """The msgpack module, or None when the optional dependency is not installed."""
    try:
        return importlib.import_module("msgpack")
    except ImportError:
        return None


def looks_like_pickle(data: bytes) -> bool:
    """True if ``data`` has the shape of a pickle of protocol 2 or later."""
    # Protocol 2+ starts with PROTO (0x80) and its number; every pickle ends with STOP.
    return len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[-1:] == b"."


def _looks_like_json(data: bytes) -> bool:
    try:
        _JSON_DECODER.decode(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        return False
    return True


def _looks_like_msgpack(data: bytes) -> bool:
    msgpack = optional_msgpack()
    if msgpack is None:  # no parser: the shape of the first byte (corral sends maps/arrays)
        return bool(data) and data[0] in _MSGPACK_CONTAINER_STARTS
    try:
        msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException):
        return False
    return True


def sniff_codec(data: bytes) -> str | None:
    """Guess which codec wrote ``data``: ``"pickle"``, ``"json"``, ``"msgpack"`` or None.

    Only inspects and parses; pickle data is recognised by its header and never
    unpickled. A guess, for error messages: tiny payloads can be valid in several
    formats (``b"1"`` is both json and msgpack; json wins).
    """
    if looks_like_pickle(data):
        return "pickle"
    if _looks_like_json(data):
        return "json"
    if _looks_like_msgpack(data):
        return "msgpack"
    return None


def undecodable(data: bytes, codec_name: str, reason: object) -> DecodeError:
    """The error for ``data`` that ``codec_name`` cannot decode: says who wrote it, if known."""
    found = sniff_codec(data)
    if found == "pickle" and codec_name != "pickle":
        return DecodeError(
            f"this message was encoded with pickle, but the app accepts {codec_name} only; it "
            "was not unpickled, because unpickling runs arbitrary code from anyone who can "
            f"write to the broker. Send it with the {codec_name} codec"
        )
    if found is not None and found != codec_name:
        return DecodeError(
            f"this message was encoded with {found}, but the app accepts {codec_name} only; "
            f"send it with the {codec_name} codec, or configure the app to accept {found}"
        )
    return DecodeError(
        f"cannot decode {len(data)} bytes with the {codec_name} codec ({reason}); the message "
        f"is corrupted or truncated. It starts with {bytes(data[:32])!r}"
    )
