"""Language tags: servers write en_US, Home Assistant writes en-US."""

from __future__ import annotations

import re

from homeassistant.core import HomeAssistant
from homeassistant.util import language as language_util


def base_language(tag: str) -> str:
    """Return the language part of a tag: en-US and en_US -> en."""
    return re.split(r"[-_]", tag, maxsplit=1)[0].lower()


def hass_language(tag: str) -> str:
    """Turn a server's language tag (en_US) into Home Assistant's (en-US)."""
    return tag.replace("_", "-")


def best_match(hass: HomeAssistant, language: str, supported: list[str]) -> str | None:
    """Return the supported tag that best matches a language, if any."""
    found = language_util.matches(language, supported, hass.config.country)
    return found[0] if found else None
