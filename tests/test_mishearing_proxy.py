"""The mishearing proxy's word swap (tests/mishearing_proxy.py), without a server."""

from __future__ import annotations

import random

import pytest

from tests.mishearing_proxy import DIRECTION_WORDS, WRONG_WORDS, mishear

SENTENCES = [
    "Turn on the kitchen light.",
    "Turn off the living room lamp.",
    "Please lock the front door.",
    "Unlock the front door.",
    "Open the blinds in the living room.",
    "Close the living room blinds.",
    "Set the living room blinds to 30 percent.",
    "What is the temperature in the living room?",
    "Is the heater on?",
]


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible, not secret


def _words(text: str) -> list[str]:
    return text.replace(".", "").replace("?", "").split()


@pytest.mark.parametrize("text", SENTENCES)
@pytest.mark.parametrize("seed", range(5))
def test_one_content_word_becomes_a_wrong_word(text: str, seed: int) -> None:
    """Exactly one word changes, into a wrong word; on/off/open/lock... stay."""
    heard = mishear(text, _rng(seed))
    said_words, heard_words = _words(text), _words(heard)
    assert len(heard_words) == len(said_words)
    changed = [
        (said, got)
        for said, got in zip(said_words, heard_words, strict=True)
        if said != got
    ]
    assert len(changed) == 1
    said, got = changed[0]
    assert got.lower() in WRONG_WORDS
    assert said.lower() not in DIRECTION_WORDS
    assert said[0].isupper() == got[0].isupper()
    # The punctuation at the end stays.
    assert heard[-1] == text[-1]


def test_the_longest_content_word_is_replaced() -> None:
    """Of "kitchen" and "light", "kitchen" is misheard."""
    heard = mishear("Turn on the kitchen light.", _rng(1))
    assert heard.startswith("Turn on the ")
    assert heard.endswith(" light.")
    assert "kitchen" not in heard


def test_the_same_seed_mishears_the_same_way() -> None:
    """Deterministic for a seed; other seeds pick other words."""
    text = "Set the living room blinds to 30 percent."
    first = [mishear(text, _rng(7)) for _ in range(3)]
    assert len(set(first)) == 1
    assert len({mishear(text, _rng(seed)) for seed in range(20)}) > 1


def test_a_text_without_a_content_word_stays() -> None:
    """Nothing but stop and direction words: nothing to mishear."""
    assert mishear("Turn it off.", _rng(0)) == "Turn it off."
    assert mishear("", _rng(0)) == ""
