"""The CloudEvents bindings' header rules: HTTP ``ce-*`` values percent-decoded, Kafka's as
they stand, a repeated attribute refused."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.cloudevents import MalformedEventError, binary_attributes

# The HTTP binding's safe set: printable ASCII except space, '"' and '%' (3.1.3.2).
SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')


def http_headers(**attributes: str) -> list[tuple[str, str]]:
    """Headers as the SDK writes them, then as an ASGI server hands them over (latin-1)."""
    return [("ce-specversion", "1.0"), ("content-type", "application/json"),
            *((f"ce-{k}", quote(v, safe=SAFE).encode().decode("latin-1"))
              for k, v in attributes.items())]


@settings(max_examples=200, derandomize=True)
@given(st.text(min_size=1, max_size=40))
def test_http_values_are_percent_decoded_utf8(value: str) -> None:
    attributes = binary_attributes(http_headers(subject=value), "ce-", percent_encoded=True)
    assert attributes is not None
    assert attributes["subject"] == value


def test_raw_utf8_http_value_still_reads_as_meant() -> None:
    raw = "Mgr-Ä".encode().decode("latin-1")  # a sender that did not percent-encode
    attributes = binary_attributes([("ce-specversion", "1.0"), ("ce-subject", raw)], "ce-",
                                   percent_encoded=True)
    assert attributes is not None and attributes["subject"] == "Mgr-Ä"


def test_kafka_values_are_taken_as_they_stand() -> None:
    attributes = binary_attributes([("ce_specversion", "1.0"), ("ce_subject", "PRJ%20é")], "ce_")
    assert attributes is not None and attributes["subject"] == "PRJ%20é"


def test_percent_decoding_to_invalid_utf8_is_malformed() -> None:
    with pytest.raises(MalformedEventError, match="ce-subject"):
        binary_attributes([("ce-specversion", "1.0"), ("ce-subject", "%C3%28")], "ce-",
                          percent_encoded=True)


@pytest.mark.parametrize("prefix", ["ce-", "ce_"])
@pytest.mark.parametrize("name", ["id", "ID", "content-type"])
def test_a_repeated_attribute_is_refused_never_last_wins(prefix: str, name: str) -> None:
    header = name if name == "content-type" else f"{prefix}{name}"
    headers = [(f"{prefix}specversion", "1.0"), (f"{prefix}id", "a"),
               ("content-type", "application/json"), (header, "b")]
    with pytest.raises(MalformedEventError, match="more than once"):
        binary_attributes(headers, prefix, percent_encoded=prefix == "ce-")


def test_repeated_ce_headers_beside_a_structured_body_are_ignored() -> None:
    headers = [("ce-id", "a"), ("ce-id", "b"), ("ce-specversion", "1.0"),
               ("content-type", "application/cloudevents+json")]
    assert binary_attributes(headers, "ce-", percent_encoded=True) is None
