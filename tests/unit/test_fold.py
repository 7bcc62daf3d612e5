"""``projections.db.fold``, the lists' ``q`` case fold, is PostgreSQL's ``LOWER`` under a
UTF-8 locale: a character at a time. Its ASCII shortcut must give the same text for every
input, whatever characters stand beside each other (``str.lower`` on a whole text treats
a final sigma and a dotted capital I otherwise)."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.db import fold


def one_at_a_time(text: str) -> str:
    return "".join(c.lower()[:1] for c in text)


def test_every_character_folds_as_it_does_alone() -> None:
    characters = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(characters), 4096):
        # Between ASCII letters and before a capital sigma: the contexts str.lower reads.
        text = "".join(f"A{c}Σ " for c in characters[start:start + 4096])
        assert fold(text) == one_at_a_time(text), start


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text())
def test_any_text_folds_a_character_at_a_time(text: str) -> None:
    assert fold(text) == one_at_a_time(text)


def test_ascii_and_the_letters_str_lower_treats_otherwise() -> None:
    assert fold("ProJect-42 ABC") == "project-42 abc"
    assert fold("ΟΔΟΣ") == "οδοσ"  # str.lower: "οδος" (final sigma)
    assert fold("İstanbul") == "istanbul"  # str.lower: "i̇stanbul" (a dot above)
