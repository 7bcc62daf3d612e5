"""CONTRACT section 10, as types: the one definition of each input limit.

The CloudEvent envelope (``ingest.cloudevents``) and every event's ``data``
(``ingest.schemas``) are built from these, so HTTP and Kafka refuse exactly the
same input. Each rule is a constraint that pydantic-core checks in Rust (a
length and a pattern, a range), not a Python validator: they run on every
inbound message. ``[0-9]`` rather than ``\\d``: Rust's ``\\d`` is Unicode and takes
Arabic-Indic digits.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    GetPydanticSchema,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError, core_schema

ID_MAX = 200
TEXT_MAX = 200
LONG_TEXT_MAX = 4000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# Far enough from ``datetime.max`` that any offset, and a day of arithmetic on the
# read side, stay representable (``9999-12-31T23:59:59-05:00`` is not, in UTC).
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
EARLIEST_DATE = EARLIEST.date()
LATEST_DATE = LATEST.date()

# The same ranges as regular expressions (JSON Schema ``pattern``), for the documents:
# ``format`` alone allows years 0000-9999 and leap seconds. A pattern cannot compare an
# instant with its offset applied, so it states a safe subset: every year from 1971 to
# 9998, where no offset (up to 23:59) can leave the range; dates 1970 to 9998. The full
# rule is in the description.
_YEAR = r"(?:197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_DAY = r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
INSTANT_PATTERN = (f"^{_YEAR}{_DAY}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,9}})?"
                   r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")
# A date has no offset: 1970 is whole; 9999 is left out (its last day is not allowed).
DATE_PATTERN = f"^(?:1970|{_YEAR[3:-1]}){_DAY}$"
CAPACITY_MAX = 10_000
OBJECTIVES_MAX = 100  # objectives one proposal contributes to

# Control characters (category Cc: U+0000-U+001F, U+007F-U+009F) and the bidi
# overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make a displayed id
# read differently from what it is.
_CC = r"\x00-\x1f\x7f-\x9f"
_BIDI = r"\u202a-\u202e\u2066-\u2069"
ID_PATTERN = rf"^[^{_CC}{_BIDI}]+$"
TEXT_PATTERN = rf"^[^{_CC}]*$"
LONG_TEXT_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"  # tab and newline allowed
MONEY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"

# What a publisher reads instead of pydantic's "String should match pattern '...'".
EXPLAINED = {
    ID_PATTERN: f"must be 1-{ID_MAX} printable characters, with no control character "
                "(NUL, newline, ESC...) and no bidi override (U+202A-U+202E, U+2066-U+2069)",
    TEXT_PATTERN: "must not hold a control character (NUL, newline, tab, ESC...)",
    LONG_TEXT_PATTERN: "must not hold a control character other than tab and newline",
    MONEY_PATTERN: "money must be a decimal string of ASCII digits, at most 15 before the "
                   "point and 4 after, without sign, exponent or spaces (e.g. \"1234.50\")",
    CURRENCY_PATTERN: "must be an ISO 4217 code of three capital letters (e.g. \"EUR\")",
}

Id = Annotated[str, StringConstraints(strict=True, max_length=ID_MAX, pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=TEXT_MAX,
                                        pattern=TEXT_PATTERN)]
LongText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=LONG_TEXT_MAX,
                                            pattern=LONG_TEXT_PATTERN)]
Currency = Annotated[str, StringConstraints(strict=True, pattern=CURRENCY_PATTERN)]


def _money(**bounds: Decimal) -> GetPydanticSchema:
    # A string checked by its pattern in Rust, then read as a Decimal: every form the
    # pattern lets through is exact and finite. (The OpenAPI document shows the first
    # step: a string with its pattern.)
    schema = core_schema.chain_schema([
        core_schema.custom_error_schema(
            core_schema.str_schema(strict=True, pattern=MONEY_PATTERN),
            custom_error_type="money", custom_error_message=EXPLAINED[MONEY_PATTERN]),
        core_schema.decimal_schema(**bounds)])  # type: ignore[arg-type]
    return GetPydanticSchema(lambda _type, _handler: schema)


Money = Annotated[Decimal, _money()]
PositiveMoney = Annotated[Decimal, _money(gt=Decimal(0))]

# A ratio or percentage given as a string: plain ASCII digits, as /v1/schemas publishes
# it. Python's Decimal also reads " 0.5", "5E-1", "+0.5", "-0", "1_0" and Arabic-Indic
# digits, which the schema refuses (the same forms issue 9 found in money).
PLAIN_DECIMAL_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)$"
_PLAIN_DECIMAL = re.compile(PLAIN_DECIMAL_PATTERN)


def _plain_text(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    # A wrap validator: the JSON Schema stays the Decimal's (number, or the string form).
    if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value) is None:
        raise PydanticCustomError(
            "plain_decimal", "a number given as a string must be plain ASCII digits with an "
            "optional fraction (e.g. \"0.25\"): no sign, exponent, spaces or separators")
    return handler(value)


# Ratios and percentages are JSON numbers (CONTRACT section 8). A float's shortest
# form has at most 17 decimals; a bound on them refuses ``1e-1000000``, which no view
# could round.
Ratio = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False, max_digits=20,
                                 decimal_places=17), WrapValidator(_plain_text)]
Weight = Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False, max_digits=20,
                                  decimal_places=17), WrapValidator(_plain_text)]
Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False, max_digits=20,
                                   decimal_places=17), WrapValidator(_plain_text)]


def _integral(value: object) -> object:
    # A JSON number without a fraction is an integer, however written (2 or 2.0: JSON
    # Schema's "integer", as /v1/schemas says). Text and 2.5 stay refused (strict).
    return int(value) if isinstance(value, float) and value.is_integer() else value


Capacity = Annotated[int, Field(strict=True, ge=1, le=CAPACITY_MAX), BeforeValidator(_integral)]
OneToFive = Annotated[int, Field(strict=True, ge=1, le=5), BeforeValidator(_integral)]


def _iso(schema: core_schema.CoreSchema) -> GetPydanticSchema:
    # ISO 8601 text only: pydantic would also read a number as seconds since the epoch.
    chain = core_schema.chain_schema([core_schema.str_schema(strict=True, max_length=64),
                                      schema])
    return GetPydanticSchema(lambda _type, _handler: chain)


# An instant with its UTC offset, in range; a date, in range. (A naive time is refused.)
Instant = Annotated[datetime, _iso(core_schema.datetime_schema(
    tz_constraint="aware", ge=EARLIEST, le=LATEST))]
Day = Annotated[date, _iso(core_schema.date_schema(ge=EARLIEST_DATE, le=LATEST_DATE))]
