"""Round trips of every codec: each value comes back as exactly its own type (P7, seeds/004).

Rejections, decode errors and sniffing are in test_serializers_errors.py.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import pickle
import sys
import threading
import uuid
import zoneinfo
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import serializers
from corral.errors import ConfigError, EncodeError
from corral.serializers import (
    CODEC_NAMES,
    Codec,
    JsonCodec,
    MsgpackCodec,
    PickleCodec,
    describe_path,
    get_codec,
    json_codec,
)

TAGGING_CODECS = ["json", "msgpack"]


def canon(value: Any) -> Any:
    """A hashable fingerprint of ``value`` that records the exact type of every part.

    Two values have equal fingerprints only if they are equal *and* every nested
    value has the same type: 1 vs True vs 1.0, tuple vs list, date vs datetime,
    -0.0 vs 0.0, Decimal('1.0') vs Decimal('1.00') all differ; nan equals nan.
    """
    kind = type(value)
    fingerprint = _FINGERPRINTS.get(kind)
    return (kind, fingerprint(value) if fingerprint else value)


_FINGERPRINTS: dict[type, Any] = {
    float: repr,
    decimal.Decimal: str,
    datetime.datetime: lambda v: (v.isoformat(), v.utcoffset()),
    list: lambda v: tuple(map(canon, v)),
    tuple: lambda v: tuple(map(canon, v)),
    set: lambda v: frozenset(map(canon, v)),
    frozenset: lambda v: frozenset(map(canon, v)),
    dict: lambda v: tuple((canon(k), canon(x)) for k, x in v.items()),
}


def assert_exact(decoded: Any, original: Any) -> None:
    assert canon(decoded) == canon(original), (decoded, original)


# --- strategies: every supported type, nested ------------------------------------------

utc_offsets = st.timedeltas(
    min_value=-datetime.timedelta(hours=23, minutes=59),
    max_value=datetime.timedelta(hours=23, minutes=59),
).map(datetime.timezone)
# Around msgpack's 64-bit limits, and past json's int-to-str digit limit (built lazily:
# hypothesis cannot repr a 5000-digit int when it describes the strategy).
big_ints = st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]) | (
    st.sampled_from([700, -5000]).map(lambda e: 10 ** abs(e) * (1 if e > 0 else -1))
)
decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [decimal.Decimal(s) for s in ("-0", "0E-7", "1.10", "-Infinity", "NaN", "-NaN7", "sNaN")]
)
hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    big_ints,
    st.floats(),
    st.text(),
    st.binary(),
    st.datetimes(),
    st.datetimes(timezones=utc_offsets),
    st.dates(),
    st.uuids(),
    decimals.filter(lambda d: not d.is_snan()),  # a signalling NaN cannot be hashed
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
values = st.recursive(
    hashables | decimals,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=4),
        st.dictionaries(st.sampled_from(["~t", "v", "x"]), inner, max_size=3),
    ),
    max_leaves=24,
)


@pytest.mark.parametrize("name", TAGGING_CODECS)
@settings(max_examples=400, deadline=None)
@given(value=values)
def test_round_trip_keeps_exact_types(name: str, value: Any) -> None:
    codec = get_codec(name)
    assert_exact(codec.decode(codec.encode(value)), value)


@settings(max_examples=150, deadline=None)
@given(value=values)
def test_pickle_round_trip(value: Any) -> None:
    codec = get_codec("pickle")
    assert_exact(codec.decode(codec.encode(value)), value)


def test_canon_tells_apart_what_must_not_be_confused() -> None:
    # The property tests are only as strict as this fingerprint.
    pairs = [
        (1, True),
        (1, 1.0),
        (0.0, -0.0),
        ((1,), [1]),
        ({1}, frozenset({1})),
        (datetime.date(2020, 1, 1), datetime.datetime(2020, 1, 1)),
        (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
        ({"a": 1}, {"a": True}),
        (b"a", "a"),
    ]
    for left, right in pairs:
        assert canon(left) != canon(right), (left, right)
    assert canon([math.nan]) == canon([float("nan")])


# --- examples that name the surprises P7 forbids ---------------------------------------

EXAMPLES: list[Any] = [
    b"\x00\xff binary result",  # seeds/004: json result serializer broke binary results
    {1: "a", 2: "b"},  # json alone would return {"1": "a", "2": "b"}
    {"~t": "bytes", "v": "AAAA"},  # a user dict that looks exactly like a tag
    {"~t": 1},
    {True: "yes", None: "none", 1.5: "float", (1, "a"): "tuple", frozenset({2}): "fs"},
    datetime.datetime(2024, 3, 5, 7, 8, 9, 123456),
    datetime.datetime(
        2024, 3, 5, 7, 8, 9, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    ),
    datetime.date(2024, 3, 5),
    [
        datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(microseconds=m)))
        for m in (1, -1, 999_999, -386_859)
    ],  # offsets under a second: CPython 3.11 reads UTC
    [datetime.date(2024, 3, 5), datetime.datetime(2024, 3, 5)],
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    [
        decimal.Decimal(s)
        for s in (
            "NaN",
            "-NaN",
            "sNaN",
            "Infinity",
            "-Infinity",
            "-0",
            "1.10",
            "1E+2",
            "0.000000000000000000000000000001",
        )
    ],
    (1, (2, [3, (4,)])),
    (),
    {1, 2, 3},
    set(),
    frozenset({"a", (1, 2)}),
    [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, 5e-324],
    [2**64, -(2**63) - 1, 2**63 - 1, 10**5000, -(10**5000)],
    [True, False, 0, 1, None, ""],
    "lone surrogate \ud800 and emoji \U0001f600",
    {"": {"": []}},
]


@pytest.mark.parametrize("name", CODEC_NAMES)
@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_examples_round_trip(name: str, value: Any) -> None:
    codec = get_codec(name)
    assert_exact(codec.decode(codec.encode(value)), value)


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_aware_datetime_keeps_its_offset_and_naive_stays_naive(name: str) -> None:
    codec = get_codec(name)
    paris = datetime.datetime(
        2024, 7, 1, 12, 0, 0, 999999, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")
    )
    back = codec.decode(codec.encode(paris))
    assert type(back) is datetime.datetime
    assert back == paris
    assert back.utcoffset() == datetime.timedelta(hours=2)
    assert back.microsecond == 999999
    naive = codec.decode(codec.encode(datetime.datetime(2024, 7, 1)))
    assert naive.tzinfo is None


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_plain_values_are_sent_untagged(name: str) -> None:
    # The common case must stay readable and cheap: no tags, compact json.
    payload = [["+15551234567", {"template": 3}], {}]
    data = get_codec(name).encode(payload)
    assert b"~t" not in data
    if name == "json":
        assert data == b'[["+15551234567",{"template":3}],{}]'
        assert json.loads(data) == payload


@settings(max_examples=300, deadline=None)
@given(value=values | st.lists(values, max_size=3))
def test_json_bytes_are_those_of_the_stdlib_encoder(value: Any) -> None:
    # The codec calls the C encoder JSONEncoder.encode builds, built once: same bytes.
    fast = JsonCodec().encode(value)
    with mock.patch.object(json_codec, "_C_ENCODER", None):
        assert JsonCodec().encode(value) == fast


@pytest.mark.parametrize("name", CODEC_NAMES)
@settings(max_examples=300, deadline=None)
@given(
    args=st.lists(values, max_size=4),
    kwargs=st.dictionaries(st.text(max_size=4), values, max_size=3),
)
def test_a_call_encodes_as_its_list(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    # encode_call checks flat arguments without walking them; the bytes must not differ.
    codec = get_codec(name)
    assert codec.encode_call("tasks.add", args, kwargs) == codec.encode(["tasks.add", args, kwargs])


calls = st.lists(
    st.tuples(
        st.lists(values | st.just("tasks.add") | st.just(',["tasks.add",'), max_size=4),
        st.dictionaries(st.text(max_size=4), values, max_size=3),
    ),
    max_size=12,
)


@pytest.mark.parametrize("name", CODEC_NAMES)
@pytest.mark.parametrize("task", ["tasks.add", "t", "tasks.<locals>.add", 'odd,["name"'])
@settings(max_examples=150, deadline=None)
@given(calls=calls)
def test_many_calls_encode_as_each_call(
    name: str, task: str, calls: list[tuple[list[Any], dict[str, Any]]]
) -> None:
    # json encodes a batch in one pass and splits it: arguments that hold the task's name
    # or the separator itself must still come out as they would one by one.
    codec = get_codec(name)
    assert codec.encode_calls(task, calls) == [codec.encode_call(task, *call) for call in calls]


@pytest.mark.parametrize(
    "args",
    [
        [["tasks.add", 1], 2],  # a list starting with the task's name: one more separator
        ["tasks.add", ["tasks.add", 1]],
        [',["tasks.add",'],  # the separator inside a string is escaped: no match
        [2**70, 1],  # plain, but one run of the C encoder over the batch
        [10**5000],  # beyond the int-to-str digit limit: tagged
    ],
)
def test_many_calls_whose_arguments_look_like_the_separator(args: list[Any]) -> None:
    codec = get_codec("json")
    calls = [([1], {}), (args, {}), (args, {"x": args}), ([3], {})]
    bodies = codec.encode_calls("tasks.add", calls)
    assert bodies == [codec.encode_call("tasks.add", *call) for call in calls]
    assert [codec.decode(body) for body in bodies] == [["tasks.add", *call] for call in calls]


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_a_call_with_a_keyword_named_like_a_tag_round_trips(name: str) -> None:
    codec = get_codec(name)
    call = ["tasks.add", [b"x", (1,)], {"~t": "bytes", "v": "eA=="}]
    assert codec.decode(codec.encode_call("tasks.add", call[1], call[2])) == call


@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_a_call_with_an_unencodable_argument_says_where(name: str) -> None:
    codec = get_codec(name)
    for args, kwargs, path in [
        ([1, object()], {}, (1, 1)),
        ([1], {"when": object()}, (2, "when")),
        ([[1, {"x": object()}]], {}, (1, 0, 1, "x")),
    ]:
        with pytest.raises(EncodeError) as caught:
            codec.encode_call("tasks.add", args, kwargs)
        assert caught.value.path == path


def test_json_output_is_utf8_not_escaped() -> None:
    data = JsonCodec().encode({"name": "Zoë", "b": b"\x00"})
    assert "Zoë".encode() in data
    assert json.loads(data) == {"name": "Zoë", "b": {"~t": "bytes", "v": "AA=="}}


def test_msgpack_bytes_are_native() -> None:
    import msgpack

    assert msgpack.unpackb(MsgpackCodec().encode([b"\x00\x01"])) == [b"\x00\x01"]


def test_pickle_keeps_types_no_other_codec_accepts() -> None:
    codec = PickleCodec()
    value = {"time": datetime.time(1, 2), "range": range(3), "ba": bytearray(b"x")}
    assert codec.decode(codec.encode(value)) == value
    assert codec.encode(value)[:2] == b"\x80\x05"


def test_values_are_not_changed_by_encoding() -> None:
    value = {"k": [(1, 2), {3}], 4: b"x"}
    snapshot = pickle.dumps(value)
    for name in CODEC_NAMES:
        get_codec(name).encode(value)
    assert pickle.dumps(value) == snapshot


# --- the registry -----------------------------------------------------------------------


def test_get_codec_returns_one_shared_instance_per_name() -> None:
    implementations: list[Codec] = [JsonCodec(), MsgpackCodec(), PickleCodec()]  # for mypy
    assert [codec.name for codec in implementations] == list(CODEC_NAMES)
    for name in CODEC_NAMES:
        codec: Codec = get_codec(name)
        assert codec is get_codec(name)
        assert codec.name == name
    assert serializers.DEFAULT_CODEC == "json"


def test_get_codec_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_codec("yaml")
    message = str(info.value)
    assert "'yaml'" in message
    assert "json, msgpack, pickle" in message


def test_msgpack_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail as if msgpack were not installed.
    monkeypatch.setitem(sys.modules, "msgpack", None)
    monkeypatch.setattr(serializers, "_codecs", {})
    with pytest.raises(ConfigError, match=r"pip install 'corral\[msgpack\]'"):
        get_codec("msgpack")
    with pytest.raises(ConfigError, match="msgpack"):
        MsgpackCodec()
    assert get_codec("json").name == "json"


def test_describe_path() -> None:
    assert describe_path(()) == ""
    assert describe_path(("meta", "path")) == "['meta']['path']"
    assert describe_path((0, 2)) == "[0][2]"
    assert describe_path(("a", 1, "it's")) == "['a'][1][\"it's\"]"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", TAGGING_CODECS)
def test_shared_codec_is_safe_across_threads(name: str) -> None:
    codec = get_codec(name)
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(2000):
                value = {"n": seed, "i": i, "t": (seed, i), "b": bytes([seed % 256])}
                assert_exact(codec.decode(codec.encode(value)), value)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
