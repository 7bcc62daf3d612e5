"""``iso_micros``: the fast reading of stored instants equals the general one, for every form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.feed import from_micros, iso_micros, micros

instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)),
                                                   timezone(timedelta(hours=-5, minutes=-30))]))


@given(instants)
def test_iso_micros_equals_micros_of_the_parsed_instant(instant: datetime) -> None:
    for text in (instant.isoformat(), instant.isoformat(timespec="seconds"),
                 instant.astimezone(UTC).isoformat()):
        assert iso_micros(text) == micros(datetime.fromisoformat(text))
    assert from_micros(iso_micros(instant.isoformat())) == instant


@given(instants)
def test_the_same_second_read_twice_gives_each_its_own_microseconds(instant: datetime) -> None:
    first = instant.astimezone(UTC).replace(microsecond=1)
    second = first.replace(microsecond=999_999)
    assert iso_micros(second.isoformat()) - iso_micros(first.isoformat()) == 999_998


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00. 12345+00:00",
                                  "2026-01-01T00:00:00.+12345+00:00",
                                  "2026-01-01T00:00:00.1_2345+00:00"])
def test_a_malformed_fraction_is_refused_as_the_general_reading_refuses_it(text: str) -> None:
    with pytest.raises(ValueError):
        datetime.fromisoformat(text)
    with pytest.raises(ValueError):
        iso_micros(text)
