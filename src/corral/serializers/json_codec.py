"""The json codec: the default, readable in the broker by any tool."""

from __future__ import annotations

import json
from typing import Any

from corral.errors import EncodeError
from corral.serializers.plain import is_plain_json
from corral.serializers.sniff import undecodable
from corral.serializers.tagger import Tagger
from corral.serializers.tags import untag

__all__ = ["JsonCodec"]

_PLAIN_JSON_DECODER = json.JSONDecoder()
_TAGGED_JSON_DECODER = json.JSONDecoder(object_hook=untag)
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_JSON_TAG_MARK = b'"~t"'


def _dump_json(value: object) -> bytes:
    try:
        text = _JSON_ENCODER.encode(value)
    except RecursionError:
        raise EncodeError("value is nested too deeply for the json codec; flatten it") from None
    # surrogatepass: a str holding a lone surrogate must round-trip, not fail here.
    return text.encode("utf-8", "surrogatepass")


class JsonCodec:
    """JSON with tagged types: the default codec, readable in the broker by any tool.

    Floats nan/inf are written as ``NaN``/``Infinity``, which Python reads back but
    strict JSON parsers in other languages refuse.
    """

    name: str = "json"

    def encode(self, value: object) -> bytes:
        """Encode ``value`` as UTF-8 JSON; raise EncodeError for unsupported values."""
        try:
            plain = is_plain_json(value)
        except RecursionError:  # a cycle or very deep nesting: the tagger says which
            plain = False
        if plain:
            try:
                return _dump_json(value)
            except ValueError:
                pass  # an int beyond Python's int-to-str digit limit: the tagger writes hex
        return _dump_json(self._tagger().tag_value(value))

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
