"""The prediction store's packed encoding, through its named accessors."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ml._internal.monitor.prediction_slots import (
    Codes,
    Extra,
    Flags,
    PackedSlots,
    PredictionCodec,
    Tombstone,
    record_key,
)


@pytest.mark.parametrize("trace_flags, output, layout, segment", [
    (0, 0, 0, -1), (1, 3, 7, 0), (0xFF, 0xFF, 0xFFFF, (1 << 24) - 2), (1, 255, 65_000, 4095)])
def test_flags_pack_and_read_back(trace_flags, output, layout, segment):
    bits = Flags.LIVE | Flags.CONTEXT | Flags.ROW
    flags = Flags.pack(bits, trace_flags, output, layout, segment)
    assert flags & 0xFF == bits
    assert (Flags.trace_flags(flags), Flags.output(flags), Flags.layout(flags),
            Flags.segment(flags)) == (trace_flags, output, layout, segment)
    assert flags < 1 << 64  # fits the slot's unsigned 64-bit field


def test_record_keys_never_collide_between_span_ids_and_user_ids():
    assert record_key("00f067aa0ba902b7") == 0x00F067AA0BA902B7
    assert record_key("00F067AA0BA902B7") == "00F067AA0BA902B7"  # not a span id's form
    assert record_key("order-42") == "order-42"
    assert record_key("0x00067aa0ba902b") == "0x00067aa0ba902b"


def test_codes_are_stable_and_capped():
    codes = Codes(cap=2)
    assert (codes("a"), codes("b"), codes("a"), codes("c")) == (0, 1, 0, -1)
    assert codes.values == ["a", "b"]


def test_slots_evict_the_oldest_count_bytes_and_remember_why():
    slots = PackedSlots(size=2, max_bytes=10_000, max_tombstones=4)
    record = slots.record_bytes
    for key, now in ((1, 0.0), (2, 1.0)):
        slots.put(key, now, 60.0, 0, 0, key, 0.5, 1, Flags.pack(Flags.LIVE, 0, 0, 1, -1),
                  None, None)
    assert slots.bytes == 2 * record and set(slots.index) == {1, 2}
    extra = Extra()
    extra.key, extra.nbytes = "order-1", 100
    slots.put("order-1", 2.0, 60.0, 0, 0, 0, 0.0, 3,
              Flags.pack(Flags.LIVE | Flags.EXTRA, 0, 0, 0, -1), None, extra)
    assert set(slots.index) == {2, "order-1"} and slots.evicted == 1
    assert slots.bytes == 2 * record + 100
    assert slots.tomb_reason(1) == "evicted" and slots.tomb_reason(2) is None
    slots.trim(now=62.0, ttl=60.0)  # key 2 (t=1) is 61 s old
    assert set(slots.index) == {"order-1"} and slots.expired == 1
    assert slots.tomb_reason(2) == "expired"
    slots.drop(slots.index["order-1"], 0)
    slots.tomb("order-1", Tombstone.DUPLICATE)
    assert slots.bytes == 0 and slots.tomb_reason("order-1") == "duplicate"


def test_dense_rows_are_decided_once_and_counted():
    slots = PackedSlots(size=4, max_bytes=10_000, max_tombstones=4)
    assert slots.dense_width(3) and not slots.dense_width(2)
    slots.put(7, 0.0, 60.0, 0, 0, 7, 1.0, 1,
              Flags.pack(Flags.LIVE | Flags.ROW, 0, 0, 1, -1), np.array([1.0, 2.0, 3.0]), None)
    assert slots.bytes == slots.record_bytes + 3 * 8
    assert slots.inputs is not None and slots.inputs[0].tolist() == [1.0, 2.0, 3.0]
    too_wide = PackedSlots(size=1000, max_bytes=1000, max_tombstones=4)
    assert not too_wide.dense_width(3) and too_wide.inputs is None


@pytest.mark.parametrize("prediction", [
    np.array([0.25]), np.array([[0.75]]), np.array(3), np.array(["spam"]), np.array([True]),
    1.5, 7, False, np.array([2], dtype=np.int32)])
def test_codec_round_trips_one_prediction(prediction):
    codec = PredictionCodec()
    value, code = codec.scalar(prediction)
    assert code > 0
    back = codec.array(value, code, None)
    expected = np.asarray(prediction)
    assert back.dtype == expected.dtype and back.shape == expected.shape
    assert back.tolist() == expected.tolist()


def test_codec_leaves_what_is_not_one_value_to_the_extra():
    codec = PredictionCodec()
    for prediction in (np.zeros(2), [1.0], "text", np.array([2**60])):
        assert codec.scalar(prediction)[1] == 0
    extra = Extra()
    extra.pred = np.zeros(2)
    assert codec.array(0.0, 0, extra) is extra.pred
