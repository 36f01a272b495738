"""What codecs refuse, and how they say it: encode rejections, decode errors, sniffing (P7)."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import os
import pathlib
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from corral.errors import CodecError, DecodeError, EncodeError
from corral.serializers import CODEC_NAMES, describe_path, get_codec, restate, sniff_codec

TAGGING_CODECS = ["json", "msgpack"]


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Mode(enum.StrEnum):
    FAST = "fast"


class Name(str):
    pass


class Count(int):
    pass


class Tags(list[str]):
    pass


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


class DayStamp(datetime.date):
    pass


Point = collections.namedtuple("Point", "x y")


@dataclasses.dataclass
class Sms:
    to: str


class FakeArray:
    """Looks like a numpy array: not encodable, but offers ``.tolist()``."""

    def tolist(self) -> list[int]:
        return [1, 2]


def _generator() -> Any:
    yield 1


REJECTED: list[tuple[object, str, str]] = [
    # (value, type name, hint)
    (Path("/tmp/x"), "PosixPath", "pass str(path)"),
    (Color.RED, "Color", "pass its .value"),
    (Level.HIGH, "Level", "pass its .value"),
    (Mode.FAST, "Mode", "pass its .value"),
    (Sms("+1555"), "Sms", "pass dataclasses.asdict(value)"),
    (datetime.time(12, 30), "time", "pass value.isoformat()"),
    (datetime.timedelta(seconds=3), "timedelta", "pass value.total_seconds()"),
    (_generator(), "generator", "pass list(value)"),
    (iter([1]), "list_iterator", "pass list(value)"),
    (range(3), "range", "pass list(value)"),
    ({"a": 1}.keys(), "dict_keys", "pass list(value)"),
    (map(str, [1]), "map", "pass list(value)"),
    (FakeArray(), "FakeArray", "pass value.tolist()"),
    (Point(1, 2), "Point", "pass value._asdict() or tuple(value)"),
    (bytearray(b"x"), "bytearray", "pass bytes(value)"),
    (memoryview(b"x"), "memoryview", "pass bytes(value)"),
    (
        Name("bob"),
        "Name",
        "it is a subclass of str and would come back as a plain str; pass str(value)",
    ),
    (Count(2), "Count", "pass int(value)"),
    (Tags(["a"]), "Tags", "pass list(value)"),
    (collections.OrderedDict(a=1), "OrderedDict", "pass dict(value)"),
    (DayStamp(2024, 1, 2), "DayStamp", "pass datetime.date.fromisoformat(value.isoformat())"),
    (
        complex(1, 2),
        "complex",
        "pass one of the supported types: None, bool, int, float, str, "
        "bytes, list, tuple, set, frozenset, dict, datetime.datetime, "
        "datetime.date, uuid.UUID and decimal.Decimal",
    ),
    (object(), "object", "pass one of the supported types"),
]


@pytest.mark.parametrize("name", TAGGING_CODECS)
@pytest.mark.parametrize(
    ("bad", "type_name", "hint"), REJECTED, ids=[type_name for _, type_name, _ in REJECTED]
)
def test_rejects_with_path_type_and_hint(name: str, bad: object, type_name: str, hint: str) -> None:
    value = {"to": "+1555", "meta": [0, {"x": bad}]}
    with pytest.raises(EncodeError) as info:
        get_codec(name).encode(value)
    error = info.value
    assert error.path == ("meta", 1, "x")
    assert error.type_name == type_name
    article = "an" if type_name[0].lower() in "aeiou" else "a"
    assert str(error).startswith(
        f"value['meta'][1]['x'] is {article} {type_name}, which the {name} codec cannot encode; "
    )
    assert hint in str(error)


def _encode_error(name: str, value: object) -> EncodeError:
    with pytest.raises(EncodeError) as info:
        get_codec(name).encode(value)
    return info.value


def _cycle() -> list[Any]:
    loop: list[Any] = []
    loop.append({"x": loop})
    return loop


@pytest.mark.parametrize("name", TAGGING_CODECS)
@pytest.mark.parametrize(
    "value",
    [{"a": [object()]}, {"a": {Path("k"): 1}}, {"a": _cycle()}, Path("x"), _deep(20_000)],
    ids=["value", "key", "cycle", "top", "deep"],
)
def test_every_message_starts_with_its_path_so_callers_can_restate_it(
    name: str, value: object
) -> None:
    _assert_restatable(_encode_error(name, value))


def test_pickle_message_starts_with_its_path_too() -> None:
    _assert_restatable(_encode_error("pickle", {"a": lambda: 1}))


def _assert_restatable(error: EncodeError) -> None:
    prefix = "value" + describe_path(error.path)
    assert str(error).startswith(prefix + " ")
    restated = restate(error, "send_sms(): argument 'meta'")
    assert restated == "send_sms(): argument 'meta'" + str(error)[len(prefix) :]


def test_restate_leaves_foreign_messages_alone() -> None:
    assert restate(EncodeError("something else", path=("a",)), "x") == "something else"


def test_message_matches_the_documented_example() -> None:
    with pytest.raises(EncodeError) as info:
        get_codec("json").encode({"meta": {"path": pathlib.PurePosixPath("/srv/a.txt")}})
    assert str(info.value) == (
        "value['meta']['path'] is a PurePosixPath, which the json codec cannot encode; "
        "pass str(path)"
    )
    assert describe_path(info.value.path) == "['meta']['path']"


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_top_level_value_has_an_empty_path(name: str) -> None:
    with pytest.raises(EncodeError) as info:
        get_codec(name).encode(Path("x"))
    assert info.value.path == ()
    assert str(info.value).startswith("value is a PosixPath")


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_bad_dict_key_names_the_dict(name: str) -> None:
    with pytest.raises(EncodeError) as info:
        get_codec(name).encode({"files": {Path("a"): 1}})
    assert info.value.path == ("files",)
    assert str(info.value).startswith("value['files'] has a key that is a PosixPath")


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_bad_value_under_a_non_str_key(name: str) -> None:
    with pytest.raises(EncodeError) as info:
        get_codec(name).encode({7: [Color.RED]})
    assert info.value.path == (7, 0)
    assert str(info.value).startswith("value[7][0] is a Color")


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_bad_member_inside_tuple_and_set(name: str) -> None:
    codec = get_codec(name)
    with pytest.raises(EncodeError) as info:
        codec.encode({"t": (1, 2, Level.HIGH)})
    assert info.value.path == ("t", 2)
    with pytest.raises(EncodeError) as info:
        codec.encode({"s": frozenset({Level.HIGH})})
    assert info.value.path == ("s", 0)  # a set member is located by its iteration index


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_bool_is_kept_apart_from_int(name: str) -> None:
    codec = get_codec(name)
    for value in ([True, 1, False, 0], {True: 1, 0: False}, (1, True)):
        back = codec.decode(codec.encode(value))
        assert back == value
        assert [type(x) for x in _flat(back)] == [type(x) for x in _flat(value)]


def _flat(value: Any) -> list[Any]:
    return [*value.keys(), *value.values()] if isinstance(value, dict) else list(value)


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_reference_cycles_are_encode_errors(name: str) -> None:
    codec = get_codec(name)
    loop: list[Any] = [1]
    loop.append({"again": loop})
    with pytest.raises(EncodeError) as info:
        codec.encode({"job": loop})
    assert info.value.path == ("job", 1, "again")
    assert "contains itself (a reference cycle)" in str(info.value)

    via_tuple: list[Any] = []
    via_tuple.append((via_tuple,))
    with pytest.raises(EncodeError, match="reference cycle"):
        codec.encode(via_tuple)

    self_dict: dict[Any, Any] = {}
    self_dict[1] = self_dict
    with pytest.raises(EncodeError, match="reference cycle"):
        codec.encode(self_dict)


def test_shared_but_acyclic_references_are_fine() -> None:
    shared = [1, 2]
    for name in CODEC_NAMES:
        codec = get_codec(name)
        back = codec.decode(codec.encode([shared, shared, (shared,)]))
        assert back == [[1, 2], [1, 2], ([1, 2],)]


@pytest.mark.parametrize("name", TAGGING_CODECS)
@pytest.mark.parametrize("wrap", [lambda x: [x], lambda x: (x,)], ids=["list", "tuple"])
def test_deep_nesting_is_an_encode_error_not_a_crash(name: str, wrap: Any) -> None:
    value: Any = 0
    for _ in range(20_000):
        value = wrap(value)
    with pytest.raises(EncodeError, match="nested too deeply"):
        get_codec(name).encode(value)


def test_pickle_encode_error() -> None:
    with pytest.raises(EncodeError, match="cannot be pickled"):
        get_codec("pickle").encode({"f": lambda: 1})


# --- decoding what a codec did not write ------------------------------------------------


def _sample() -> dict[str, Any]:
    return {
        "to": "+1555",
        "n": [1, 2.5, None],
        "when": datetime.date(2024, 1, 2),
        "b": b"\x00\x01",
        "k": {1: (2, 3)},
    }


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_every_truncation_is_a_decode_error(name: str) -> None:
    codec = get_codec(name)
    data = codec.encode(_sample())
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:end])


@pytest.mark.parametrize("name", CODEC_NAMES)
@pytest.mark.parametrize(
    "garbage", [b"", b"\xff\xfe\xfd", b"not a message", b"\xc1", b"\x80\x04garbage", b'{"a": }']
)
def test_garbage_is_a_decode_error(name: str, garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        get_codec(name).decode(garbage)


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_corrupt_message_error_shows_its_start(name: str) -> None:
    with pytest.raises(DecodeError) as info:
        get_codec(name).decode(b"\xff\xfe\xfd")
    assert f"cannot decode 3 bytes with the {name} codec" in str(info.value)
    assert "b'\\xff\\xfe\\xfd'" in str(info.value)


@pytest.mark.parametrize("writer", CODEC_NAMES)
@pytest.mark.parametrize("reader", CODEC_NAMES)
def test_data_written_by_another_codec_is_named(writer: str, reader: str) -> None:
    if writer == reader:
        return
    data = get_codec(writer).encode(_sample())
    with pytest.raises(DecodeError) as info:
        get_codec(reader).decode(data)
    assert f"encoded with {writer}, but the app accepts {reader} only" in str(info.value)


def _tagged_json(tag: object, payload: object) -> bytes:
    import json

    return json.dumps({"x": [{"~t": tag, "v": payload}]}).encode()


@pytest.mark.parametrize(
    ("tag", "payload", "message"),
    [
        ("matrix", [1], "unknown tag 'matrix'"),
        (["list"], [1], "unknown tag ['list']"),
        ("tuple", "ab", "expected a list payload, got str"),
        ("bytes", "!!not base64!!", "malformed 'bytes' tag"),
        ("bytes", 12, "expected a str payload, got int"),
        ("datetime", "yesterday", "malformed 'datetime' tag"),
        ("date", "2024-13-01", "malformed 'date' tag"),
        ("uuid", "1234", "malformed 'uuid' tag"),
        ("decimal", "1.2.3", "malformed 'decimal' tag"),
        ("decimal", 1.5, "expected a str payload"),
        ("int", "xyz", "malformed 'int' tag"),
        ("set", [[1]], "malformed 'set' tag"),
        ("dict", [[1, 2, 3]], "malformed 'dict' tag"),
        ("dict", [[[1], 2]], "malformed 'dict' tag"),
    ],
)
def test_malformed_tags_are_decode_errors(tag: object, payload: object, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        get_codec("json").decode(_tagged_json(tag, payload))
    assert message in str(info.value)


def test_tag_with_extra_keys_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="expected exactly the keys"):
        get_codec("json").decode(b'{"~t":"bytes","v":"AA==","w":1}')


def test_msgpack_tags_are_checked_too() -> None:
    import msgpack

    with pytest.raises(DecodeError, match="unknown tag 'matrix'"):
        get_codec("msgpack").decode(msgpack.packb({"~t": "matrix", "v": 1}))
    with pytest.raises(DecodeError, match="extension type 5"):
        get_codec("msgpack").decode(msgpack.packb(msgpack.ExtType(5, b"x")))


def test_decode_errors_are_codec_errors() -> None:
    assert issubclass(DecodeError, CodecError)
    assert issubclass(EncodeError, CodecError)


# --- sniffing, and never unpickling unless asked ----------------------------------------


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_sniff_recognises_each_codec(name: str) -> None:
    assert sniff_codec(get_codec(name).encode(_sample())) == name
    assert sniff_codec(get_codec(name).encode([["+15551234567", {"template": 3}], {}])) == name


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_sniff_recognises_every_pickle_protocol_from_2(protocol: int) -> None:
    assert sniff_codec(pickle.dumps({"a": (1, 2)}, protocol=protocol)) == "pickle"


@pytest.mark.parametrize("data", [b"", b"\xc1\xc1", b"not a message", b"\x80\x04garbage"])
def test_sniff_unknown_is_none(data: bytes) -> None:
    assert sniff_codec(data) is None


def test_sniff_without_msgpack_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    data = get_codec("msgpack").encode({"a": 1})
    monkeypatch.setitem(sys.modules, "msgpack", None)
    assert sniff_codec(data) == "msgpack"  # judged by its first byte: a map
    assert sniff_codec(b"\xc1\xc1") is None


class Trap:
    """Unpickling this creates a directory: proof that someone unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("reader", TAGGING_CODECS)
def test_json_and_msgpack_never_unpickle(reader: str, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    data = pickle.dumps({"task": "send_sms", "args": [Trap(str(marker))]})
    with pytest.raises(DecodeError) as info:
        get_codec(reader).decode(data)
    message = str(info.value)
    assert f"this message was encoded with pickle, but the app accepts {reader} only" in message
    assert "was not unpickled" in message
    assert not marker.exists()


def test_negative_control_pickle_codec_does_run_the_trap(tmp_path: Path) -> None:
    # Shows the trap above works, so its silence there means no unpickling happened.
    marker = tmp_path / "unpickled"
    get_codec("pickle").decode(pickle.dumps(Trap(str(marker))))
    assert marker.is_dir()


def test_pickle_codec_refuses_data_without_a_pickle_header() -> None:
    with pytest.raises(DecodeError, match="encoded with json, but the app accepts pickle"):
        get_codec("pickle").decode(get_codec("json").encode([1, 2]))
    with pytest.raises(DecodeError, match="cannot unpickle"):
        get_codec("pickle").decode(b"\x80\x05garbage.")


def test_decimal_context_does_not_round_decoded_values() -> None:
    exact = decimal.Decimal("3.14159265358979323846264338327950288419716939937510")
    with decimal.localcontext() as context:
        context.prec = 5
        for name in TAGGING_CODECS:
            codec = get_codec(name)
            assert str(codec.decode(codec.encode(exact))) == str(exact)
