"""Every typed conversion of the event mapping (service/core/mapping/convert.py, timestamps.py):
what each type turns a decoded value into, and what it refuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from service.core.mapping.convert import to_text
from service.core.mapping.spec import Conversion, ConversionError, Kind, TimeFormat, Unit

STRING = Conversion()
NUMBER = Conversion(kind=Kind.NUMBER)
BOOLEAN = Conversion(kind=Kind.BOOLEAN)
DATETIME = Conversion(kind=Kind.DATETIME)
DATE = Conversion(kind=Kind.DATE)


# -- string ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("Gold plan", "Gold plan"),
        ("", ""),
        (42, "42"),
        (-(2**80), str(-(2**80))),
        (True, "true"),
        (False, "false"),
        (Decimal("12345678901234567890.123456789"), "12345678901234567890.123456789"),
        (0.1, "0.1"),
        (datetime(2024, 3, 1, 10, 0, tzinfo=UTC), "2024-03-01T10:00:00.000Z"),
        (date(2024, 3, 1), "2024-03-01"),
        (time(9, 30), "09:30:00"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    ],
)
def test_string_writes_each_scalar_as_text(value: object, text: str) -> None:
    assert to_text(value, STRING) == text


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"a": 1}, "is an object"),
        ([1, 2], "is an array"),
        (b"\x00\x01", "is bytes"),
        (object(), "not a property value"),
    ],
)
def test_string_refuses_what_is_not_one_value(value: object, why: str) -> None:
    with pytest.raises(ConversionError, match=why):
        to_text(value, STRING)


# -- number ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (7, "7"),
        (2**70, "1180591620717411303424"),
        # beyond a float's 15-17 significant digits: every digit kept
        (Decimal("12345678901234567890.123456789012"), "12345678901234567890.123456789012"),
        (Decimal("-0.0001"), "-0.0001"),
        (Decimal("12.5000"), "12.5000"),  # the scale the producer wrote is kept
        (Decimal("1E+3"), "1000"),  # never an exponent
        (Decimal("1.5E-7"), "0.00000015"),
        (0.1, "0.1"),  # a float by its shortest text, not 0.1000000000000000055...
        (1e16, "10000000000000000"),
        (" 12.50 ", "12.50"),
        ("1e5", "100000"),
        ("-3", "-3"),
    ],
)
def test_number_is_exact_decimal_text(value: object, text: str) -> None:
    assert to_text(value, NUMBER) == text


def test_a_decimal_beyond_float_precision_does_not_go_through_a_float() -> None:
    value = Decimal("0.30000000000000000000000000001")
    assert to_text(value, NUMBER) == "0.30000000000000000000000000001"
    assert str(float(value)) == "0.3"  # what a float would have sent


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (True, "is a boolean, not a number"),
        ("twelve", "is not a number"),
        (Decimal("NaN"), "not a finite number"),
        (float("inf"), "not a finite number"),
        ("Infinity", "not a finite number"),
        ([1], "is not a number"),
    ],
)
def test_number_refuses_what_is_not_a_finite_number(value: object, why: str) -> None:
    with pytest.raises(ConversionError, match=why):
        to_text(value, NUMBER)


# -- boolean --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), ("TRUE", "true"), (" false ", "false"), (1, "true"),
     (0, "false")],
)  # fmt: skip
def test_boolean(value: object, text: str) -> None:
    assert to_text(value, BOOLEAN) == text


@pytest.mark.parametrize("value", ["yes", 2, Decimal("1"), None.__class__, 1.0])
def test_boolean_refuses_anything_else(value: object) -> None:
    with pytest.raises(ConversionError, match="is not a boolean"):
        to_text(value, BOOLEAN)


# -- datetime -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC), "2024-03-01T10:00:00.123Z"),
        # another zone: the same instant in UTC
        (datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
         "2024-03-02T04:30:00.000Z"),
        (datetime(2024, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris")), "2024-07-01T10:00:00.000Z"),
        # before 1970
        (datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC), "1969-07-20T20:17:40.000Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
        (date(2024, 3, 1), "2024-03-01T00:00:00.000Z"),  # a date: its midnight UTC
        (1_709_287_200_000, "2024-03-01T10:00:00.000Z"),  # epoch ms (the default unit)
        (-14_182_940_000, "1969-07-20T20:17:40.000Z"),  # negative: before 1970
        (-1, "1969-12-31T23:59:59.999Z"),
        ("1709287200000", "2024-03-01T10:00:00.000Z"),
        ("2024-03-01T10:00:00Z", "2024-03-01T10:00:00.000Z"),
        ("2024-03-01T05:00:00-05:00", "2024-03-01T10:00:00.000Z"),
        ("2024-03-01", "2024-03-01T00:00:00.000Z"),
        ("1969-07-20T20:17:40.5+00:00", "1969-07-20T20:17:40.500Z"),
    ],
)  # fmt: skip
def test_datetime_is_the_utc_instant_in_milliseconds(value: object, text: str) -> None:
    assert to_text(value, DATETIME) == text


@pytest.mark.parametrize(
    ("unit", "value", "text"),
    [
        (Unit.SECONDS, 1_709_287_200, "2024-03-01T10:00:00.000Z"),
        (Unit.SECONDS, -1, "1969-12-31T23:59:59.000Z"),
        (Unit.SECONDS, Decimal("1709287200.25"), "2024-03-01T10:00:00.250Z"),
        (Unit.SECONDS, 1709287200.5, "2024-03-01T10:00:00.500Z"),
        (Unit.MILLISECONDS, 0, "1970-01-01T00:00:00.000Z"),
        (Unit.MICROSECONDS, 1_709_287_200_123_999, "2024-03-01T10:00:00.123Z"),
        (Unit.MICROSECONDS, -1, "1969-12-31T23:59:59.999Z"),  # rounded down, not towards 0
        (Unit.SECONDS, Decimal("-0.0000005"), "1969-12-31T23:59:59.999Z"),
    ],
)
def test_epoch_numbers_in_each_unit(unit: Unit, value: object, text: str) -> None:
    assert to_text(value, Conversion(kind=Kind.DATETIME, unit=unit)) == text


def test_a_timestamp_without_a_zone_is_read_in_the_entry_zone() -> None:
    new_york = Conversion(kind=Kind.DATETIME, zone="America/New_York")
    assert to_text(datetime(2024, 1, 15, 9, 0), new_york) == "2024-01-15T14:00:00.000Z"
    assert to_text("2024-07-15T09:00:00", new_york) == "2024-07-15T13:00:00.000Z"  # DST
    assert to_text(datetime(2024, 1, 15, 9, 0), DATETIME) == "2024-01-15T09:00:00.000Z"
    # a value that carries its own zone keeps it
    assert to_text("2024-01-15T09:00:00+01:00", new_york) == "2024-01-15T08:00:00.000Z"


def test_datetime_as_epoch_milliseconds() -> None:
    epoch_ms = Conversion(kind=Kind.DATETIME, output=TimeFormat.EPOCH_MS)
    assert to_text(datetime(2024, 3, 1, 10, tzinfo=UTC), epoch_ms) == "1709287200000"
    assert to_text(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), epoch_ms) == "-1"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("next tuesday", "is not an ISO 8601 timestamp"),
        ("2024-13-01", "is not a date"),
        (True, "is not a timestamp"),
        (Decimal("NaN"), "is not a timestamp"),
        ({"seconds": 1}, "is not a timestamp"),
        (10**20, "out of range"),
    ],
)
def test_datetime_refuses_what_is_not_a_timestamp(value: object, why: str) -> None:
    with pytest.raises(ConversionError, match=why):
        to_text(value, DATETIME)


# -- date -----------------------------------------------------------------------------------


def test_date_is_the_calendar_day() -> None:
    assert to_text(date(1969, 7, 20), DATE) == "1969-07-20"
    assert to_text("2024-03-01", DATE) == "2024-03-01"
    assert to_text(1_709_287_200_000, DATE) == "2024-03-01"
    assert to_text(-86_400_000, DATE) == "1969-12-31"


def test_a_date_is_the_day_in_the_entry_zone() -> None:
    late_evening = datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert to_text(late_evening, DATE) == "2024-03-02"  # in UTC it is the 2nd already
    new_york = Conversion(kind=Kind.DATE, zone="America/New_York")
    assert to_text(late_evening, new_york) == "2024-03-01"
    assert to_text(date(2024, 3, 1), new_york) == "2024-03-01"  # a date stays itself


def test_date_as_epoch_milliseconds_of_midnight_utc() -> None:
    epoch_ms = Conversion(kind=Kind.DATE, output=TimeFormat.EPOCH_MS)
    assert to_text(date(2024, 3, 1), epoch_ms) == "1709251200000"
    assert to_text(datetime(2024, 3, 1, 18, tzinfo=UTC), epoch_ms) == "1709251200000"
    assert to_text(date(1969, 12, 31), epoch_ms) == "-86400000"


# -- enum -----------------------------------------------------------------------------------

STATUS = Conversion(
    kind=Kind.ENUM, values={"ACTIVE": "active", "PAST_DUE": "past_due", "3": "three"}
)


def test_enum_maps_symbols() -> None:
    assert to_text("ACTIVE", STATUS) == "active"
    assert to_text("PAST_DUE", STATUS) == "past_due"
    assert to_text(3, STATUS) == "three"  # a Protobuf enum's number or a JSON integer


def test_an_enum_symbol_outside_the_map_is_refused_without_a_default() -> None:
    with pytest.raises(ConversionError, match="'PAUSED' is not in the value map"):
        to_text("PAUSED", STATUS)


def test_an_enum_symbol_outside_the_map_takes_the_default() -> None:
    with_default = Conversion(kind=Kind.ENUM, values={"ACTIVE": "active"}, default="other")
    assert to_text("PAUSED", with_default) == "other"
    assert to_text("ACTIVE", with_default) == "active"


@pytest.mark.parametrize("value", [True, 1.5, {"a": 1}])
def test_enum_refuses_what_is_not_a_symbol(value: object) -> None:
    with pytest.raises(ConversionError, match="is not an enum symbol"):
        to_text(value, STATUS)
