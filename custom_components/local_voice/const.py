"""Constants for Local Voice."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "local_voice"

SUBENTRY_PROVIDER: Final = "provider"
SUBENTRY_ASSISTANT: Final = "assistant"

CONF_INFO: Final = "info"
CONF_PROVIDERS: Final = "providers"

# Ports the official Wyoming add-ons and containers listen on by default, tried
# on this host when the integration is added.
DEFAULT_SCAN_PORTS: Final = (
    10200,  # Piper
    10300,  # Whisper / faster-whisper
    10400,  # openWakeWord
    10500,  # Porcupine
    10555,  # Speech-to-Phrase
    10600,  # microWakeWord
    10700,  # Snowboy
    10800,  # Vosk
    10900,  # whisper.cpp
)
SCAN_HOST: Final = "127.0.0.1"

PROBE_INTERVAL: Final = timedelta(seconds=30)

CONF_UNREACHABLE_MINUTES: Final = "unreachable_minutes"
# A repair is raised for a provider unreachable for longer than this.
DEFAULT_UNREACHABLE_MINUTES: Final = 10
