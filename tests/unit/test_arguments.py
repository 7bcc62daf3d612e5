"""The ``pmo`` argument types: any text is a value in range or a usage error, nothing else."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmo.arguments import PORT_MAX, api_url, port, positive

TEXT = st.one_of(st.text(max_size=30), st.from_regex(r"-?[0-9]{1,25}", fullmatch=True),
                 st.integers(-10**6, 10**6).map(str))


@settings(max_examples=300, derandomize=True)
@given(TEXT)
def test_a_port_is_ascii_digits_in_range_or_a_usage_error(text: str) -> None:
    try:
        value = port(text)
    except argparse.ArgumentTypeError:
        return
    assert 1 <= value <= PORT_MAX and text.isascii() and text.isdigit() and int(text) == value


@settings(max_examples=300, derandomize=True)
@given(TEXT)
def test_a_count_is_at_least_1_or_a_usage_error(text: str) -> None:
    try:
        value = positive(text)
    except argparse.ArgumentTypeError:
        return
    assert value >= 1 and text.isascii() and text.isdigit()


@pytest.mark.parametrize("odd", [" 80", "80 ", "8_0", "٨٠", "+80", "0x50", "", "80.0"])
def test_int_accepts_these_and_the_cli_does_not(odd: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        port(odd)


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=40))
def test_an_api_url_is_http_with_a_host_or_a_usage_error(text: str) -> None:
    try:
        url = api_url(text)
    except (argparse.ArgumentTypeError, ValueError):  # argparse reports both as usage errors
        return
    assert url.startswith(("http://", "https://")) and not url.endswith("/")
