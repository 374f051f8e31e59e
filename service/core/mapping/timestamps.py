"""Timestamps and dates to what HubSpot accepts: exact, in UTC, any year datetime carries.

Reads timezone-aware and naive datetimes (Avro `timestamp-*` and `local-timestamp-*`,
Protobuf `Timestamp` as the decoder gives them), dates (Avro `date`, `google.type.Date`),
epoch numbers in seconds, milliseconds or microseconds (negative ones before 1970 too, never
through a float), and ISO 8601 text. A value that carries no zone is read in the
conversion's zone. A `datetime` is sent as `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds, the
precision HubSpot keeps, rounded down) or as epoch milliseconds; a `date` as `YYYY-MM-DD`
(its calendar day in the conversion's zone) or as the epoch milliseconds of midnight UTC.
Pure.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

from service.core.mapping.spec import (
    Conversion,
    ConversionError,
    Kind,
    TimeFormat,
    Unit,
    shown,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_MICROS_PER = {Unit.SECONDS: 1_000_000, Unit.MILLISECONDS: 1_000, Unit.MICROSECONDS: 1}


def timestamp_text(value: object, conversion: Conversion) -> str:
    """`value` as a HubSpot datetime (Kind.DATETIME) or date (Kind.DATE)."""
    if conversion.kind is Kind.DATE:
        return _date_text(_calendar_day(value, conversion), conversion.output)
    return _datetime_text(instant(value, conversion), conversion.output)


def instant(value: object, conversion: Conversion) -> datetime:
    """The UTC instant `value` stands for (a date: its midnight UTC)."""
    if isinstance(value, datetime):
        return _in_utc(value, conversion.zone)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    if isinstance(value, str):
        return _parse_text(value, conversion)
    return _from_epoch(_epoch_number(value), conversion.unit)


def _calendar_day(value: object, conversion: Conversion) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _is_date_only(value):
        return _parse_date(value)
    return instant(value, conversion).astimezone(_zone(conversion.zone)).date()


def _datetime_text(moment: datetime, output: TimeFormat) -> str:
    if output is TimeFormat.EPOCH_MS:
        return str((moment - EPOCH) // _ONE_MS)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _date_text(day: date, output: TimeFormat) -> str:
    if output is TimeFormat.EPOCH_MS:
        return str((datetime.combine(day, time(), UTC) - EPOCH) // _ONE_MS)
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def _in_utc(moment: datetime, zone: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=_zone(zone))
    return moment.astimezone(UTC)


def _parse_text(text: str, conversion: Conversion) -> datetime:
    stripped = text.strip()
    if _is_integer_text(stripped):
        return _from_epoch(int(stripped), conversion.unit)
    if _is_date_only(stripped):
        return datetime.combine(_parse_date(stripped), time(), UTC)
    try:
        return _in_utc(datetime.fromisoformat(stripped), conversion.zone)
    except ValueError:
        raise ConversionError(f"{shown(text)} is not an ISO 8601 timestamp") from None


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConversionError(f"{shown(text)} is not a date (YYYY-MM-DD)") from None


def _is_date_only(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) == 10 and stripped[4] == "-" and stripped[7] == "-"


def _is_integer_text(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isascii() and digits.isdigit()


def _epoch_number(value: object) -> Decimal:
    """An epoch number exactly: ints and decimals as they are, a float by its shortest text."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConversionError(f"{shown(value)} is not a timestamp")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ConversionError(f"{shown(value)} is not a timestamp") from None
    if not number.is_finite():
        raise ConversionError(f"{shown(value)} is not a timestamp")
    return number


def _from_epoch(number: int | Decimal, unit: Unit) -> datetime:
    micros = int((Decimal(number) * _MICROS_PER[unit]).to_integral_value(rounding=ROUND_FLOOR))
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise ConversionError(f"epoch {number} {unit.value} is out of range") from None


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)
