"""The json codec: the default, readable in the broker by any tool."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from itertools import starmap
from typing import TYPE_CHECKING, Any

from corral.errors import EncodeError
from corral.serializers.plain import is_plain_json, is_plain_json_call
from corral.serializers.sniff import undecodable
from corral.serializers.tagger import Tagger
from corral.serializers.tags import untag

if TYPE_CHECKING:
    from _json import make_encoder

__all__ = ["JsonCodec"]

_PLAIN_JSON_DECODER = json.JSONDecoder()
_TAGGED_JSON_DECODER = json.JSONDecoder(object_hook=untag)
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_JSON_TAG_MARK = b'"~t"'


def _c_encoder() -> make_encoder | None:
    """The C encoder ``_JSON_ENCODER.encode`` would build anew on every call, built once."""
    try:
        from _json import encode_basestring, make_encoder
    except ImportError:  # an interpreter without CPython's accelerator
        return None
    # The very arguments JSONEncoder.iterencode passes for the options above.
    return make_encoder(
        None, _JSON_ENCODER.default, encode_basestring, None, ":", ",", False, False, True
    )


_C_ENCODER = _c_encoder()


def _dump_json(value: object) -> bytes:
    try:
        if _C_ENCODER is not None:
            text = "".join(_C_ENCODER(value, 0))
        else:
            text = _JSON_ENCODER.encode(value)
    except RecursionError:
        raise EncodeError("value is nested too deeply for the json codec; flatten it") from None
    # surrogatepass: a str holding a lone surrogate must round-trip, not fail here.
    return text.encode("utf-8", "surrogatepass")


# Task names whose JSON text holds no comma, quote, bracket or backslash (module.qualname,
# <locals> included): see _dump_calls.
_SPLITTABLE = re.compile(r"[A-Za-z0-9_.<>]+")


def _all_plain(calls: Sequence[tuple[list[Any], dict[str, Any]]]) -> bool:
    try:
        return all(starmap(is_plain_json_call, calls))
    except RecursionError:
        return False


def _dump_calls(
    encoder: make_encoder, task: str, calls: Sequence[tuple[list[Any], dict[str, Any]]]
) -> list[bytes] | None:
    """The bodies of plain calls from one run of the C encoder over them all, or None.

    One run is cheaper than one per call. The batch comes out as ``[`` + the bodies
    joined by ``,`` + ``]``, and each body starts with ``["<task>",``: split at
    ``,["<task>",``. With a ``_SPLITTABLE`` name, that separator has commas only at
    its ends, so two occurrences can only overlap by one comma: one ending where a
    real one starts would end with the quote after the name, but each real one comes
    after the ``]`` closing a body; one starting at a real one's last comma is
    skipped by the split. So the split finds every real separator, and an argument
    that holds the separator too (a list starting with the task's name) only adds
    pieces: with as many pieces as calls, each piece is a body; else None.
    """
    try:
        text = "".join(encoder([(task, args, kwargs) for args, kwargs in calls], 0))
    except (ValueError, RecursionError):
        return None  # an int beyond the digit limit, or deep nesting: call by call
    head = f'["{task}",'.encode()
    pieces = text.encode("utf-8", "surrogatepass")[1:-1].split(b"," + head)
    if len(pieces) != len(calls):
        return None
    return [pieces[0], *(head + piece for piece in pieces[1:])]


class JsonCodec:
    """JSON with tagged types: the default codec, readable in the broker by any tool.

    Floats nan/inf are written as ``NaN``/``Infinity``, which Python reads back but
    strict JSON parsers in other languages refuse.
    """

    name: str = "json"

    def encode(self, value: object) -> bytes:
        """Encode ``value`` as UTF-8 JSON; raise EncodeError for unsupported values."""
        try:
            if is_plain_json(value):
                return _dump_json(value)
        except RecursionError:  # a cycle or very deep nesting: the tagger says which
            pass
        except ValueError:  # an int beyond Python's int-to-str digit limit: the tagger writes hex
            pass
        return _dump_json(self._tagger().tag_value(value))

    def encode_call(self, task: str, args: list[Any], kwargs: dict[str, Any]) -> bytes:
        """Encode the task call ``[task, args, kwargs]`` as :meth:`encode` would."""
        call = [task, args, kwargs]
        try:
            if type(task) is str and is_plain_json_call(args, kwargs):
                return _dump_json(call)
        except (RecursionError, ValueError):  # as in encode()
            pass
        return _dump_json(self._tagger().tag_value(call))

    def encode_calls(
        self, task: str, calls: Sequence[tuple[list[Any], dict[str, Any]]]
    ) -> list[bytes]:
        """Encode many calls ``(args, kwargs)`` of ``task``: :meth:`encode_call` of each."""
        if _C_ENCODER is not None and _SPLITTABLE.fullmatch(task) and _all_plain(calls):
            bodies = _dump_calls(_C_ENCODER, task, calls)
            if bodies is not None:
                return bodies
        return [self.encode_call(task, args, kwargs) for args, kwargs in calls]

    def decode(self, data: bytes) -> Any:
        """Decode JSON written by :meth:`encode`; raise DecodeError for anything else."""
        decoder = _TAGGED_JSON_DECODER if _JSON_TAG_MARK in data else _PLAIN_JSON_DECODER
        try:
            return decoder.decode(data.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError) as exc:
            raise undecodable(data, self.name, exc) from None

    def _tagger(self) -> Tagger:
        # Ints with more than ~600 digits are tagged: every receiver can parse them,
        # whatever its sys.set_int_max_str_digits() (the minimum is 640).
        return Tagger(self.name, bytes_native=False, int_bounds=(-(2**2000), 2**2000))
