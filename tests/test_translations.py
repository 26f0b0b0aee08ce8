"""strings.json holds each text once; translations/en.json is it resolved."""

from __future__ import annotations

import json

from scripts.translations import ENGLISH, STRINGS, english, resolve


def test_english_is_strings_resolved() -> None:
    """en.json is exactly what scripts/translations.py makes of strings.json."""
    assert ENGLISH.read_text(encoding="utf-8") == english()


def test_every_reference_resolves_to_text() -> None:
    """No reference is left, and each names a text of its own."""
    resolved = json.dumps(resolve(json.loads(STRINGS.read_text(encoding="utf-8"))))
    assert "[%key:" not in resolved


def test_assistant_steps_are_written_once() -> None:
    """The assistant subentry's steps refer to the first setup's texts."""
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    steps = strings["config_subentries"]["assistant"]["step"]
    for step in ("assistant", "voice"):
        assert steps[step]["title"] == f"[%key:config::step::{step}::title%]"
