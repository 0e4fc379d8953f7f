#!/usr/bin/env python3
"""Writes expected/*.json: what `cdcsync tail` must print for tail_test.cpp's changes, derived from Debezium's
documented PostgreSQL mapping (connector 2.7, decimal.handling.mode=precise, time.precision.mode=adaptive,
binary.handling.mode=bytes, interval.handling.mode=numeric, hstore.handling.mode=json), computed here
independently of the C++ encoder. Volatile fields (ts_*, source.lsn/sequence/txId, transaction.id) are left
out: the test drops them from what tail prints before comparing.

Run from this folder: python3 make_expected.py
"""
import base64
import datetime
import json
import struct
from decimal import Decimal, getcontext

getcontext().prec = 1000  # exact: normalize() and scaleb() round to the context precision

PREFIX = "tailtest"
DB = "tail_types"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def java_bigint_bytes(n: int) -> bytes:
    """BigInteger.toByteArray: shortest big-endian two's complement, at least one byte."""
    length = 1
    while not (-(1 << (8 * length - 1)) <= n < (1 << (8 * length - 1))):
        length += 1
    return n.to_bytes(length, "big", signed=True)


def decimal_fixed(text: str, scale: int) -> str:
    """org.apache.kafka.connect.data.Decimal: the unscaled value's bytes, base64 (JsonConverter)."""
    unscaled = int(Decimal(text).scaleb(scale).to_integral_exact())
    return b64(java_bigint_bytes(unscaled))


def decimal_variable(text: str):
    """io.debezium.data.VariableScaleDecimal {scale, value}; the connector strips trailing zeros."""
    d = Decimal(text).normalize()
    sign, digits, exp = d.as_tuple()
    scale = max(-exp, 0)
    unscaled = int(d.scaleb(scale))
    return {"scale": scale, "value": b64(java_bigint_bytes(unscaled))}


def civil_days(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (LocalDate.toEpochDay), any year."""
    if 1 <= y <= 9999:
        return (datetime.date(y, m, d) - datetime.date(1970, 1, 1)).days
    # Shift by whole 400-year cycles (146097 days each) into datetime's range.
    cycles = (2000 - y) // 400 + 1
    return civil_days(y + 400 * cycles, m, d) - 146097 * cycles


def micros(y, mo, d, h, mi, s, us=0) -> int:
    return (civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1_000_000 + us


def point(x: float, y: float):
    """io.debezium.data.geometry.Point: x, y, WKB of POINT(x y) little-endian, srid null."""
    return {"x": x, "y": y, "wkb": b64(struct.pack("<BIdd", 1, 1, x, y)), "srid": None}


def bits(text: str, nbits: int) -> str:
    """io.debezium.data.Bits: java.util.BitSet.toByteArray, little-endian and sized to the highest set bit
    (PostgresValueConverter.convertBits recomputes numBytes from BitSet.length(), so trailing zero bytes are
    dropped and all zeros are no bytes). `nbits` is the declared width, which does not matter."""
    value = int(text, 2) if text else 0
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "little"))


def source(table, schema="public"):
    return {"version": "2.7.3.Final", "connector": "postgresql", "name": PREFIX, "snapshot": "false",
            "db": DB, "schema": schema, "table": table, "xmin": None}


def row_event(table, op, before, after):
    return {"before": before, "after": after, "source": source(table), "op": op}


MONTH_US = 2_629_800 * 1_000_000  # MicroDuration.DAYS_PER_MONTH_AVG = 365.25 / 12 days
DAY_US = 86_400 * 1_000_000

num1 = {"id": 1, "i2": 1, "i4": 2147483647, "i8": 9223372036854775807, "f4": 1.5, "f8": -2.25,
        "d": decimal_fixed("12345.60", 2), "v": decimal_variable("1.50"), "b": True,
        "m": decimal_fixed("12.34", 2)}
num2 = {"id": 2, "i2": -32768, "i4": -1, "i8": -9223372036854775808, "f4": "NaN", "f8": "Infinity",
        "d": decimal_fixed("-0.01", 2),
        # NaN in precise mode: Debezium stops with an error; cdcsync sends null and counts it.
        "v": None, "b": False, "m": decimal_fixed("-1.50", 2)}
num3 = {"id": 3, "i2": 0, "i4": 0, "i8": 0, "f4": "-Infinity", "f8": 3.14159, "d": decimal_fixed("0.00", 2),
        "v": decimal_variable("123456789012345678901234567890.123"), "b": None, "m": decimal_fixed("0.00", 2)}
num1_updated = dict(num1, i4=7)
num3_key = {k: (v if k == "id" else None) for k, v in num3.items()}

files = {
    "num": [
        row_event("num", "c", None, num1),
        row_event("num", "c", None, num2),
        row_event("num", "c", None, num3),
        row_event("num", "u", None, num1_updated),
        row_event("num", "d", num3_key, None),
    ],
    "txt": [
        row_event("txt", "c", None, {"id": 1, "c": "ab ", "vc": "h\u00e9llo \"quoted\"", "t": "line1\nline2\ttab",
                                     "ci": "MiXeD Case", "h": json.dumps({"a": "1", "b": None}, separators=(",", ":")),
                                     "l": "Top.Science.Astronomy"}),
        row_event("txt", "c", None, {"id": 2, "c": None, "vc": "", "t": "\\", "ci": "x", "h": "{}", "l": "Top"}),
    ],
    "dt": [
        row_event("dt", "c", None, {
            "id": 1, "d": civil_days(2024, 2, 29), "t": (13 * 3600 + 45 * 60 + 30) * 1_000_000 + 123456,
            "t3": (13 * 3600 + 45 * 60 + 30) * 1000 + 123, "tz": "11:45:30Z",
            "ts": micros(2024, 2, 29, 13, 45, 30, 123456), "ts3": micros(2024, 2, 29, 13, 45, 30, 123000) // 1000,
            "tstz": "2024-02-29T11:45:30.500000Z",
            "iv": 14 * MONTH_US + 3 * DAY_US + (4 * 3600 + 5 * 60 + 6) * 1_000_000 + 500_000}),
        row_event("dt", "c", None, {
            "id": 2, "d": civil_days(-43, 3, 15),  # 0044-03-15 BC is astronomical year -43
            "t": 0, "t3": 86_399_999, "tz": "05:30:00Z",
            # "Data type mappings": +/-infinity timestamps become 9223372036825200000 / -9223372036832400000
            # (micros here; a millisecond column gets the same instant in millis).
            "ts": 9223372036825200000, "ts3": -9223372036832400000 // 1000,
            "tstz": "infinity", "iv": -(DAY_US + 1_000_000)}),
        row_event("dt", "c", None, {
            # The connector maps date 'infinity' / '-infinity' to LocalDate -5877611-06-21 / -5877611-06-22.
            "id": 3, "d": civil_days(-5877611, 6, 21), "t": None, "t3": None, "tz": None, "ts": None,
            "ts3": None, "tstz": "-infinity", "iv": 0}),
    ],
    "bin": [
        row_event("bin", "c", None, {"id": 1, "ba": b64(bytes.fromhex("deadbeef")),
                                     "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                     "j": "{\"b\": 1, \"a\": [true, null]}", "jb": "{\"a\": [true, null], \"b\": 1}",
                                     "x": "<r a=\"1\">x</r>", "bt": bits("101", 3), "vb": b64(bytes([0x01, 0x02])),
                                     "b1": True}),
        row_event("bin", "c", None, {"id": 2, "ba": "", "u": "00000000-0000-0000-0000-000000000000", "j": "null",
                                     "jb": "\"s\"", "x": "<e/>", "bt": bits("000", 3), "vb": "", "b1": False}),
    ],
    "net": [
        row_event("net", "c", None, {"id": 1, "i": "192.168.0.1/24", "c": "10.0.0.0/8", "m": "08:00:2b:01:02:03",
                                     "m8": "08:00:2b:01:02:03:04:05", "p": point(1.5, -2.0), "r": "[1,10)",
                                     "dr": "[2024-01-01,2024-02-01)", "nr": "(1.5,2.5]"}),
    ],
    "usr": [
        row_event("usr", "c", None, {"id": 1, "e": "happy", "p": decimal_fixed("12.50", 2), "s": "abc",
                                     "ea": ["sad", "ok"]}),
        row_event("usr", "c", None, {"id": 2, "e": None, "p": decimal_fixed("0.00", 2), "s": None, "ea": []}),
    ],
    "arr": [
        row_event("arr", "c", None, {"id": 1, "ia": [1, None, 3], "ta": ["a b", "c,d", None, "NULL"],
                                     "md": [[1, 2], [3, 4]], "na": [decimal_fixed("1.5", 1), None]}),
        row_event("arr", "c", None, {"id": 2, "ia": None, "ta": [], "md": [], "na": [decimal_fixed("-0.5", 1)]}),
        {"before": None, "after": None, "source": source("arr"), "op": "t"},
    ],
    # A primary key update is a delete of the old key (its tombstone follows) and a create of the new one.
    "kc": [
        row_event("kc", "d", {"id": 1, "v": "a"}, None),
        row_event("kc", "c", None, {"id": 2, "v": "a"}),
    ],
    "big": [
        row_event("big", "u", None, {"id": 1, "body": "__debezium_unavailable_value", "n": 2}),
    ],
    "message": [
        {"source": source("", schema=""), "op": "m", "message": {"prefix": "tail-test", "content": b64(b"hello")}},
        {"source": source("", schema=""), "op": "m", "message": {"prefix": "tail-nt", "content": b64(b"x")}},
    ],
}

for name, events in files.items():
    with open(f"expected/{name}.json", "w") as f:
        json.dump(events, f, indent=1, ensure_ascii=False)
        f.write("\n")
print(sum(len(e) for e in files.values()), "events")
