"""strings.json holds each text once; translations/en.json is it resolved."""

from __future__ import annotations

import json
import re
from typing import Any

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


def _keys_in_code(pattern: str) -> set[str]:
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (STRINGS.parent).glob("*.py")
    )
    return set(re.findall(pattern, source))


def _section_keys(strings: dict[str, Any], *path: str) -> set[str]:
    node: Any = strings
    for part in path:
        node = node.get(part, {})
    return set(node)


def test_every_key_the_code_uses_has_a_text() -> None:
    """Errors, aborts, exceptions, issues and entity names all have their text."""
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    errors = _section_keys(strings, "config", "error")
    aborts = _section_keys(strings, "config", "abort")
    for subentry in ("provider", "assistant"):
        errors |= _section_keys(strings, "config_subentries", subentry, "error")
        aborts |= _section_keys(strings, "config_subentries", subentry, "abort")
    named = (
        _section_keys(strings, "exceptions")
        | _section_keys(strings, "issues")
        | {key for platform in strings["entity"].values() for key in platform}
    )
    used_errors = (
        _keys_in_code(r'ProbeError\("([a-z_]+)"\)')
        | _keys_in_code(r'error="([a-z_]+)"')
        | _keys_in_code(r'\] = "([a-z_]+)"')
        | _keys_in_code(r': "(language_unsupported_[a-z]+)"')
    )
    used_aborts = _keys_in_code(r'reason="([a-z_]+)"') - {
        "reconfigure_successful"  # Home Assistant's own text
    }
    used_names = _keys_in_code(r'translation_key="([a-z_]+)"')
    assert used_errors and used_aborts and used_names
    assert used_errors - errors == set()
    assert used_aborts - aborts == set()
    assert used_names - named == set()
